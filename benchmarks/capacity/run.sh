#!/usr/bin/env bash
# The capacity sweep: embedding dim x table capacity x optimizer x precision, one command.
# Per point: predicted vs measured server memory, pull/push keys/s, training samples/s and
# per-task AUC; writes OUT/capacity.csv, OUT/report.md and PNG plots (python3-matplotlib).
#
# Usage: benchmarks/capacity/run.sh [--quick] [--out DIR] [--build-dir DIR]
#   --quick   3 dims x 2 caps x 2 optimizers x 2 precisions on 100k records (~4 minutes)
#   default   6 dims x 4 caps x 2 optimizers x 3 precisions on 400k records (1.5-2 hours)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
quick=""; out=""; build_dir="$root/build"

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick="--quick"; shift ;;
    --out) out="$2"; shift 2 ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "capacity/run.sh: unknown argument '$1'" >&2; usage 2 ;;
  esac
done
[ -n "$out" ] || out="$root/benchmarks/capacity/out-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
build_dir="$(cd "$build_dir" 2>/dev/null && pwd || echo "$build_dir")"

# Nothing is installed here: say what is missing and how to get it.
missing=()
for b in mtps-datagen mtps-plan mtps-server mtps-worker mtps-scheduler mtps-keys mtps-capacity-probe; do
  [ -x "$build_dir/bin/$b" ] || missing+=("$b")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "capacity/run.sh: missing in $build_dir/bin: ${missing[*]}" >&2
  echo "  build them: cmake --build $build_dir --target ${missing[*]}" >&2
  exit 2
fi
/usr/bin/python3 -c 'import yaml' 2>/dev/null || {
  echo "capacity/run.sh: /usr/bin/python3 lacks yaml: apt-get install python3-yaml" >&2; exit 2; }

/usr/bin/python3 "$root/benchmarks/capacity/sweep.py" $quick --out "$out" \
  --build-dir "$build_dir" --root "$root"
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  /usr/bin/python3 "$root/benchmarks/capacity/plots.py" "$out"
else
  echo "capacity/run.sh: no plots: /usr/bin/python3 lacks matplotlib" \
       "(apt-get install python3-matplotlib); capacity.csv and report.md are written" >&2
fi
echo "capacity/run.sh: $out/capacity.csv, $out/report.md"
