#!/usr/bin/env bash
# Learning curve on generated data: for each data size, the default job spec that
# mtps-datagen writes (MMoE, early stopping on the mean AUC) trained by mtps and by the same
# model in PyTorch (benchmarks/e2e_torch.py --per_epoch, the same early stopping), each
# task's AUC at its best epoch beside the data set's oracle AUC.
#
# Usage: benchmarks/learning_curve.sh [--rows "200000 1000000 5000000"] [--seed N]
#          [--threads N] [--cluster] [--no-torch] [--build-dir DIR] [--work-dir DIR]
#
# mtps runs LocalTrainer (mtps-worker --local: sequential and deterministic); --cluster adds
# 2 servers + 2 workers on loopback (launch/local.sh, async). Output: a table per size and
# task (mtps AUC and best epoch, PyTorch AUC and best epoch, oracle, mtps - PyTorch, oracle
# - mtps) in WORK/table.md, every run's logs and summary.json under WORK/. Targets (issue
# 13): mtps >= PyTorch - 0.002 at every size; the gap to the oracle shrinking with data.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

sizes="200000 1000000 5000000"; seed=7; threads=1; cluster=0; torch=1
build_dir="$root/build"; work=""
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) sizes="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --cluster) cluster=1; shift ;;
    --no-torch) torch=0; shift ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --work-dir) work="$2"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "learning_curve.sh: unknown argument '$1'" >&2; usage 2 ;;
  esac
done
for n in $sizes "$seed" "$threads"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "learning_curve.sh: counts must be positive integers, got '$n'" >&2; exit 2; }
done
die() { echo "learning_curve.sh: $*" >&2; exit 1; }
bin="$build_dir/bin"
for b in mtps-worker mtps-datagen mtps-server mtps-scheduler mtps-keys; do
  [ -x "$bin/$b" ] || die "$bin/$b is missing: build it (cmake --build $build_dir --target $b)"
done
[ "$torch" -eq 0 ] || /usr/bin/python3 -c 'import numpy, torch, yaml' 2>/dev/null ||
  die "PyTorch, numpy or PyYAML missing for /usr/bin/python3 (apt-get install -y python3-torch python3-yaml), or --no-torch"
[ -n "$work" ] || work="$(mktemp -d "${TMPDIR:-/tmp}/mtps-learning-curve.XXXXXX")"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
cores="$(nproc)"  # before the export below: nproc obeys OMP_NUM_THREADS
export OPENBLAS_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
echo "learning_curve.sh: sizes $sizes, seed $seed, $threads thread(s); work dir $work"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $cores cores"

for rows in $sizes; do
  d="$work/$rows"
  mkdir -p "$d"
  formats="mtb"; [ "$torch" -eq 0 ] || formats="mtb csv"
  for format in $formats; do
    [ -f "$d/$format/job.yaml" ] && continue
    "$bin/mtps-datagen" --out "$d/$format" --rows "$rows" --seed "$seed" --format "$format" \
      >"$d/datagen-$format.log" 2>&1 || { tail -5 "$d/datagen-$format.log"; die "datagen $rows $format failed"; }
  done
  echo "$rows rows: $(grep '^oracle' "$d/datagen-mtb.log")"
  mkdir -p "$d/local"
  /usr/bin/time -f '%e s wall' -o "$d/local/time.txt" "$bin/mtps-worker" --local --config "$d/mtb/job.yaml" \
    --cpu_threads "$threads" --run_dir "$d/local" --logtostderr >"$d/local/out.log" 2>&1 ||
    { tail -20 "$d/local/out.log"; die "mtps-worker --local on $rows rows failed"; }
  echo "  mtps LocalTrainer: $(grep -o 'best epoch.*' "$d/local/out.log" | tail -1) ($(cat "$d/local/time.txt"))"
  if [ "$cluster" -eq 1 ]; then
    bash "$root/launch/local.sh" --config "$d/mtb/job.yaml" --servers 2 --workers 2 \
      --run-dir "$d/cluster" --build-dir "$build_dir" >"$d/cluster.log" 2>&1 ||
      { tail -20 "$d/cluster.log"; die "local.sh on $rows rows failed"; }
    echo "  mtps 2 servers + 2 workers: done"
  fi
  if [ "$torch" -eq 1 ]; then
    mkdir -p "$d/torch"
    /usr/bin/python3 "$root/benchmarks/e2e_torch.py" --config "$d/csv/job.yaml" --threads "$threads" --per_epoch \
      --out "$d/torch/summary.json" >"$d/torch/out.log" 2>&1 ||
      { tail -20 "$d/torch/out.log"; die "e2e_torch.py on $rows rows failed"; }
    echo "  PyTorch: best epoch $(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["best_epoch"])' "$d/torch/summary.json")"
  fi
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

/usr/bin/python3 - "$work" $sizes <<'PY' | tee "$work/table.md"
import json, os, sys
work, sizes = sys.argv[1], sys.argv[2:]
def load(path):
    return json.load(open(path)) if os.path.exists(path) else None
print("| rows | task | mtps AUC (best epoch / run) | 2s2w AUC | PyTorch AUC (best epoch / run) | oracle | mtps - PyTorch | oracle - mtps |")
print("|---|---|---|---|---|---|---|---|")
for rows in sizes:
    local = load(f"{work}/{rows}/local/summary.json")
    cluster = load(f"{work}/{rows}/cluster/summary.json")
    torch = load(f"{work}/{rows}/torch/summary.json")
    for task, t in local["tasks"].items():
        oracle = t.get("oracle_auc", float("nan"))
        cell = lambda s: f"{s['tasks'][task]['auc']:.4f} ({s.get('best_epoch', '-')}/{s['epochs']})" if s else "-"
        c = f"{cluster['tasks'][task]['auc']:.4f} ({cluster.get('best_epoch', '-')}/{cluster['epochs']})" if cluster else "-"
        gap = f"{t['auc'] - torch['tasks'][task]['auc']:+.4f}" if torch else "-"
        print(f"| {int(rows):,} | {task} | {cell(local)} | {c} | {cell(torch)} | {oracle:.4f} | {gap} | {oracle - t['auc']:.4f} |")
print("\n(best epoch / epochs run), epochs counted from 0; both stop after 2 epochs without a 0.0005 gain in mean AUC.")
PY
