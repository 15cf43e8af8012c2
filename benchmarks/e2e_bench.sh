#!/usr/bin/env bash
# End-to-end MMoE benchmark on one generated data set: LocalTrainer, 1 server + 1 worker and
# 2 servers + 2 workers on loopback, and the same model in PyTorch on the CPU, side by side.
#
# Usage: benchmarks/e2e_bench.sh [--rows N] [--epochs N] [--reps N] [--seed N] [--threads N]
#          [--users N] [--items N] [--categories N] [--shops N] [--build-dir DIR]
#          [--work-dir DIR] [--strict]
#
# Defaults: 300000 rows, 2 epochs, 2 repetitions, 1 thread, build dir build/, a fresh
# temporary work dir (kept, for the logs). The four configurations run interleaved, once
# per repetition, so that the machine's load falls on all of them alike; the table gives
# the median and the range of samples/s and AUC. Targets (issue 6): distributed >= 70% of
# LocalTrainer's samples/s; LocalTrainer >= 2x PyTorch's at AUC within 0.01. A failed run
# exits non-zero; a missed target does only with --strict. --threads sets LocalTrainer's
# --cpu_threads and PyTorch's threads; local.sh's workers keep their default (1).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

rows=300000; epochs=2; reps=2; seed=1; threads=1
users=5000; items=3000; categories=50; shops=300
build_dir="$root/build"; work=""; strict=0
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) rows="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --users) users="$2"; shift 2 ;;
    --items) items="$2"; shift 2 ;;
    --categories) categories="$2"; shift 2 ;;
    --shops) shops="$2"; shift 2 ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --work-dir) work="$2"; shift 2 ;;
    --strict) strict=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "e2e_bench.sh: unknown argument '$1'" >&2; usage 2 ;;
  esac
done
for n in "$rows" "$epochs" "$reps" "$seed" "$threads" "$users" "$items" "$categories" "$shops"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "e2e_bench.sh: counts must be positive integers, got '$n'" >&2; exit 2; }
done
die() { echo "e2e_bench.sh: $*" >&2; exit 1; }

bin="$build_dir/bin"
for b in mtps-worker mtps-server mtps-scheduler mtps-datagen; do
  [ -x "$bin/$b" ] && continue
  echo "e2e_bench.sh: building the mtps binaries into $build_dir"
  cmake -S "$root" -B "$build_dir" -G Ninja -DMTPS_CUDA=OFF >/dev/null
  cmake --build "$build_dir" -j "$(nproc)" --target mtps-worker mtps-server mtps-scheduler mtps-datagen
  break
done
/usr/bin/python3 -c 'import numpy, torch, yaml' 2>/dev/null ||
  die "PyTorch, numpy or PyYAML missing for /usr/bin/python3: apt-get install -y python3-torch python3-yaml"
[ -n "$work" ] || work="$(mktemp -d "${TMPDIR:-/tmp}/mtps-e2e-bench.XXXXXX")"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
[ -z "$(ls -A "$work")" ] || die "work dir $work is not empty"
cores="$(nproc)"  # before the export below: nproc obeys OMP_NUM_THREADS
export OPENBLAS_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
echo "e2e_bench.sh: $rows rows, $epochs epochs, $reps repetitions, $threads thread(s); work dir $work"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) on $cores cores"

# One world, two formats: .mtb for mtps, CSV for PyTorch.
world=(--rows "$rows" --seed "$seed" --users "$users" --items "$items" --categories "$categories"
       --shops "$shops")
for format in mtb csv; do
  "$bin/mtps-datagen" --out "$work/$format" --format "$format" "${world[@]}" \
    >"$work/datagen-$format.log" 2>&1 || { tail -20 "$work/datagen-$format.log"; die "mtps-datagen --format $format failed"; }
done
grep '^oracle' "$work/datagen-mtb.log"

# The generator promises the same records in both formats: every CSV file, converted to
# .mtb through the same spec, must equal the generated .mtb file byte for byte.
mkdir -p "$work/check"
for csv in "$work"/csv/*.csv; do
  name="$(basename "$csv" .csv)"
  "$bin/mtps-datagen" convert --in "$csv" --config "$work/mtb/job.yaml" --out "$work/check/$name.mtb" \
    >>"$work/check/convert.log" 2>&1 || { tail -5 "$work/check/convert.log"; die "converting $csv failed"; }
  cmp -s "$work/check/$name.mtb" "$work/mtb/$name.mtb" ||
    die "$csv does not hold the records of $work/mtb/$name.mtb (converted: $work/check/$name.mtb)"
done
echo "records: every CSV file converts to its .mtb twin byte for byte ($(ls "$work"/csv/*.csv | wc -l) files)"

# Both job specs with the benchmark's epochs; apart from their data section they must agree.
for format in mtb csv; do
  grep -q '^  epochs: ' "$work/$format/job.yaml" || die "$work/$format/job.yaml has no training epochs line"
  sed -E "s/^  epochs: .*/  epochs: $epochs/" "$work/$format/job.yaml" >"$work/job-$format.yaml"
done
spec_body() { sed '1d; /^data:/,/^features:/{/^features:/!d}' "$1"; }
diff <(spec_body "$work/job-mtb.yaml") <(spec_body "$work/job-csv.yaml") >/dev/null ||
  die "the mtb and csv job specs differ beyond their data section"

run() {  # run CONFIG REP COMMAND...: logs, whole-run CPU time and summary.json in runs/CONFIG-REP
  local dir="$work/runs/$1-$2"; shift 2
  mkdir -p "$dir"
  if ! /usr/bin/time -f '%U %S' -o "$dir/cpu.txt" "$@" >"$dir/out.log" 2>&1; then
    tail -25 "$dir/out.log" >&2
    die "run $(basename "$dir") failed: $*; logs in $dir"
  fi
  [ -s "$dir/summary.json" ] || die "run $(basename "$dir") wrote no summary.json; logs in $dir"
  printf '  %-12s %s\n' "$(basename "$dir")" \
    "$(/usr/bin/python3 -c 'import json, sys; print("%.0f samples/s" % json.load(open(sys.argv[1]))["samples_per_sec"])' "$dir/summary.json")"
}
for ((rep = 1; rep <= reps; rep++)); do
  echo "repetition $rep of $reps"
  run local "$rep" "$bin/mtps-worker" --local --config "$work/job-mtb.yaml" --cpu_threads "$threads" \
    --run_dir "$work/runs/local-$rep" --logtostderr
  run 1s1w "$rep" bash "$root/launch/local.sh" --config "$work/job-mtb.yaml" --servers 1 --workers 1 \
    --run-dir "$work/runs/1s1w-$rep" --build-dir "$build_dir"
  run 2s2w "$rep" bash "$root/launch/local.sh" --config "$work/job-mtb.yaml" --servers 2 --workers 2 \
    --run-dir "$work/runs/2s2w-$rep" --build-dir "$build_dir"
  run pytorch "$rep" /usr/bin/python3 "$root/benchmarks/e2e_torch.py" --config "$work/job-csv.yaml" \
    --threads "$threads" --out "$work/runs/pytorch-$rep/summary.json"
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

strict_flag=(); [ "$strict" -eq 0 ] || strict_flag=(--strict)
/usr/bin/python3 - "$work" "$reps" ${strict_flag[@]+"${strict_flag[@]}"} <<'PY' | tee "$work/table.txt"
import json, statistics, sys

work, reps, strict = sys.argv[1], int(sys.argv[2]), "--strict" in sys.argv[3:]
configs = [("local", "LocalTrainer"), ("1s1w", "1 server + 1 worker"),
           ("2s2w", "2 servers + 2 workers"), ("pytorch", "PyTorch (CPU)")]
runs = {}
for key, _ in configs:
    runs[key] = []
    for rep in range(1, reps + 1):
        d = f"{work}/runs/{key}-{rep}"
        s = json.load(open(f"{d}/summary.json"))
        user, system = map(float, open(f"{d}/cpu.txt").read().split()[-2:])
        # mtps: CPU of the whole run, every process (reading, eval and start-up included);
        # PyTorch: CPU of its training loop only. Both are far steadier than wall time here.
        s["cpu_per_sample"] = (s["cpu_seconds"] if key == "pytorch" else user + system) / s["samples"]
        runs[key].append(s)
tasks = list(runs["local"][0]["tasks"])

def spread(values, fmt):
    m = statistics.median(values)
    return f"{m:{fmt}} ({min(values):{fmt}}..{max(values):{fmt}})", m

local_sps = [s["samples_per_sec"] for s in runs["local"]]
header = f"{'configuration':<22}{'samples/s median (range)':<28}{'vs local':>9}{'samples/CPU-s':>15}"
header += "".join(f"  {t + ' AUC median (range)':<26}" for t in tasks)
print()
print(header)
medians = {}
for key, name in configs:
    text, m = spread([s["samples_per_sec"] for s in runs[key]], ".0f")
    medians[key] = {"sps": m}
    per_cpu = statistics.median(1 / s["cpu_per_sample"] for s in runs[key])
    line = f"{name:<22}{text:<28}{m / statistics.median(local_sps):>8.2f}x{per_cpu:>15.0f}"
    for t in tasks:
        auc_text, auc_m = spread([s["tasks"][t]["auc"] for s in runs[key]], ".4f")
        medians[key][t] = auc_m
        line += f"  {auc_text:<26}"
    print(line)
oracle = runs["local"][0]["tasks"]
print(f"{'oracle':<22}{'':<28}{'':>9}{'':>15}" +
      "".join(f"  {oracle[t].get('oracle_auc', float('nan')):<26.4f}" for t in tasks))
print("samples/CPU-s: mtps = samples / CPU of every process of the run (start-up, reading, "
      "eval included); PyTorch = samples / CPU of its training loop alone.")

def ratios(key, base):  # per repetition: the runs of one repetition shared the machine's load
    return [a["samples_per_sec"] / b["samples_per_sec"] for a, b in zip(runs[key], runs[base])]

missed = []
def target(label, ok, detail):
    print(f"  {label:<56}{detail:<44}{'met' if ok else 'MISSED'}")
    if not ok:
        missed.append(label)

print("\ntargets (ratio of medians; range of the per-repetition ratios):")
for key in ("1s1w", "2s2w"):
    r = medians[key]["sps"] / medians["local"]["sps"]
    rr = ratios(key, "local")
    target(f"{dict(configs)[key]} >= 70% of LocalTrainer samples/s", r >= 0.7,
           f"{100 * r:.0f}% ({100 * min(rr):.0f}%..{100 * max(rr):.0f}%)")
r = medians["local"]["sps"] / medians["pytorch"]["sps"]
rr = ratios("local", "pytorch")
target("LocalTrainer >= 2x PyTorch samples/s", r >= 2, f"{r:.2f}x ({min(rr):.2f}x..{max(rr):.2f}x)")
cpu_r = statistics.median(s["cpu_per_sample"] for s in runs["pytorch"]) / \
        statistics.median(s["cpu_per_sample"] for s in runs["local"])
print(f"  {'(per CPU-second: LocalTrainer / PyTorch)':<56}{cpu_r:.2f}x")
gaps = {t: medians["local"][t] - medians["pytorch"][t] for t in tasks}
target("LocalTrainer AUC within 0.01 of PyTorch's", all(abs(g) <= 0.01 for g in gaps.values()),
       ", ".join(f"{t} {g:+.4f}" for t, g in gaps.items()))
for key in ("1s1w", "2s2w"):
    g = {t: medians[key][t] - medians["local"][t] for t in tasks}
    target(f"{dict(configs)[key]} AUC within 0.01 of LocalTrainer", all(abs(v) <= 0.01 for v in g.values()),
           ", ".join(f"{t} {v:+.4f}" for t, v in g.items()))
json.dump({"runs": runs, "missed": missed}, open(f"{work}/results.json", "w"), indent=1)
print(f"\nruns, logs and results.json in {work}")
sys.exit(1 if strict and missed else 0)
PY
