#!/usr/bin/env bash
# launch/plot_run.py: a summary.json with per-epoch history becomes a valid PNG of a sane
# size (every chunk's CRC, the image data's length, the dimensions); a summary without
# history, a missing file and a non-JSON file get one clear message and no traceback.
# Skipped (77) without Debian's python3-matplotlib. Usage: plot_run_test.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
py=/usr/bin/python3
if ! "$py" -c 'import matplotlib' 2>/dev/null; then
  echo "skipped: python3-matplotlib is not installed (apt-get install python3-matplotlib)"
  exit 77
fi
dir="$(mktemp -d)"; trap 'rm -rf "$dir"' EXIT

cat >"$dir/summary.json" <<'EOF'
{"model": "mmoe", "mode": "async", "servers": 2, "workers": 2, "epochs": 3, "best_epoch": 1,
 "stopped_early": true, "samples": 540000, "skipped_records": 0, "train_seconds": 7.5,
 "samples_per_sec": 72000,
 "tasks": {"ctr": {"auc": 0.7106, "logloss": 0.2926, "oracle_auc": 0.7536},
           "cvr": {"auc": 0.7834, "logloss": 0.0845}},
 "history": [
  {"epoch": 0, "samples": 180000, "seconds": 2.6, "tasks": {
    "ctr": {"train_loss": 0.31, "auc": 0.699, "logloss": 0.2947},
    "cvr": {"train_loss": 0.09, "auc": 0.766, "logloss": 0.0849}}},
  {"epoch": 1, "samples": 180000, "seconds": 2.5, "tasks": {
    "ctr": {"train_loss": 0.29, "auc": 0.7106, "logloss": 0.2926},
    "cvr": {"train_loss": 0.085, "auc": null, "logloss": 0.0845}}},
  {"epoch": 2, "samples": 180000, "seconds": 2.4, "tasks": {
    "ctr": {"train_loss": 0.285, "auc": 0.7165, "logloss": 0.2911},
    "cvr": {"train_loss": 0.083, "auc": 0.79, "logloss": 0.0833}}}]}
EOF
out="$("$py" "$root/launch/plot_run.py" "$dir/summary.json")"
[ "$out" = "$dir/auc_loss_by_epoch.png" ] || { echo "plot_run.py printed '$out'"; exit 1; }
"$py" - "$dir/auc_loss_by_epoch.png" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "no PNG signature"
pos, chunks, idat = 8, [], b""
while pos < len(data):
    length, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + length]
    crc, = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
    assert zlib.crc32(kind + body) == crc, f"bad CRC in chunk {kind}"
    chunks.append(kind)
    if kind == b"IDAT":
        idat += body
    pos += 12 + length
assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND", chunks
width, height, depth, color = struct.unpack(">IIBB", data[16:26])
channels = {0: 1, 2: 3, 4: 2, 6: 4}[color]
raw = zlib.decompress(idat)
assert len(raw) == height * (1 + width * channels * depth // 8), "image data of the wrong length"
# Two rows of two panels: wider than tall, and not a thumbnail or a poster.
assert 600 <= width <= 3000 and 400 <= height <= 3000 and width > height, (width, height)
assert len(set(raw)) > 50, "a blank image"
print(f"PNG {width}x{height}, {len(data)} bytes, {len(chunks)} chunks")
PY

# A summary without history: exit 1, one line naming the file and the reason.
"$py" - "$dir/summary.json" "$dir/old.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
del s["history"]
json.dump(s, open(sys.argv[2], "w"))
PY
expect_refusal() {  # CODE TEXT FILE...
  local code=0 want="$1" text="$2"; shift 2
  "$py" "$root/launch/plot_run.py" "$@" -o "$dir/never.png" >"$dir/out.txt" 2>&1 || code=$?
  if [ "$code" -ne "$want" ] || ! grep -q -- "$text" "$dir/out.txt" || grep -q Traceback "$dir/out.txt" \
     || [ -e "$dir/never.png" ]; then
    echo "plot_run.py $*: exit $code (want $want), output:"; cat "$dir/out.txt"; exit 1
  fi
}
expect_refusal 1 "has no per-epoch history to plot" "$dir/old.json"
echo '{"history": []}' >"$dir/empty.json"
expect_refusal 1 "has no per-epoch history to plot" "$dir/empty.json"
expect_refusal 2 "cannot read $dir/missing.json" "$dir/missing.json"
echo 'not json' >"$dir/bad.json"
expect_refusal 2 "is not JSON" "$dir/bad.json"
echo '{"history": [3]}' >"$dir/odd.json"
expect_refusal 2 "every history entry needs" "$dir/odd.json"
echo "plot_run.py: ok"
