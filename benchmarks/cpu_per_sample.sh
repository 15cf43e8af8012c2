#!/usr/bin/env bash
# Samples per CPU-second: LocalTrainer against 1 server + 1 worker (launch/local.sh, with
# its scheduler) on the same generated data and spec, interleaved. CPU is perf stat's
# task-clock of the whole process tree (children are counted whether or not anyone waits
# for them; local.sh runs with --no-plot, since drawing the curves is not training);
# samples come from each run's summary.json. Also prints each run's samples/s,
# per-task AUC and the 1+1 worker's payload bytes per step. --training 'KEY: VALUE' (may
# repeat) sets a training field of both runs' spec, e.g. 'dense_sync_every: 4'.
#
#   benchmarks/cpu_per_sample.sh [--build DIR] [--rows N] [--epochs N] [--rounds N]
#                                [--training 'KEY: VALUE']...
set -euo pipefail
cd "$(dirname "$0")/.."
build=build rows=100000 epochs=3 rounds=3 training=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --rows) rows=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --training) training+=("$2"); shift 2 ;;
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    *) echo "cpu_per_sample.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v perf >/dev/null || { echo "cpu_per_sample.sh: needs perf (linux-perf)" >&2; exit 1; }
work=$(mktemp -d)
"$build/bin/mtps-datagen" --out "$work/data" --rows "$rows" --seed 7 >/dev/null
# A fixed number of epochs, no early stop: both sides train the same samples.
sed -i -e "s/^  epochs: .*/  epochs: $epochs/" -e 's/patience: [0-9]*/patience: 1000/' "$work/data/job.yaml"
for kv in ${training[@]+"${training[@]}"}; do
  key=${kv%%:*}
  if grep -q "^  $key:" "$work/data/job.yaml"; then sed -i "s|^  $key:.*|  $kv|" "$work/data/job.yaml"
  else sed -i "/^training:/a\\  $kv" "$work/data/job.yaml"; fi
done
samples() { /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["samples"])' "$1"; }
cpu_ms() { grep task-clock "$1" | cut -d, -f1; }
for r in $(seq 1 "$rounds"); do
  perf stat -e task-clock -x, -o "$work/local$r.perf" "$build/bin/mtps-worker" --local \
    --config "$work/data/job.yaml" --run_dir "$work/local$r" >"$work/local$r.log" 2>&1
  perf stat -e task-clock -x, -o "$work/dist$r.perf" launch/local.sh --config "$work/data/job.yaml" \
    --servers 1 --workers 1 --insecure --no-plot --build-dir "$build" --run-dir "$work/dist$r" \
    >"$work/dist$r.log" 2>&1
  l=$(samples "$work/local$r/summary.json"); d=$(samples "$work/dist$r/summary.json")
  lc=$(cpu_ms "$work/local$r.perf"); dc=$(cpu_ms "$work/dist$r.perf")
  /usr/bin/python3 -c "import sys; l,lc,d,dc=map(float,sys.argv[1:]); a=l/lc*1e3; b=d/dc*1e3; print(f'round $r: LocalTrainer {a:,.0f} samples/CPU-s ({l:.0f} in {lc/1e3:.2f} s), 1+1 {b:,.0f} ({d:.0f} in {dc/1e3:.2f} s): {100*b/a:.1f}%')" "$l" "$lc" "$d" "$dc"
  /usr/bin/python3 - "$work/local$r/summary.json" "$work/dist$r/summary.json" <<'PY'
import json, sys
for name, path in zip(("  LocalTrainer", "  1+1"), sys.argv[1:]):
    s = json.load(open(path))
    aucs = " ".join(f"{t} auc {v['auc']:.4f}" for t, v in s["tasks"].items())
    print(f"{name}: {s['samples_per_sec']:,.0f} samples/s, {aucs}")
PY
  grep -o "payload bytes per step.*" "$work/dist$r/worker-0.log" | tail -1 | sed 's/^/  1+1 worker: /' || true
done
echo "cpu_per_sample.sh: runs kept in $work"
