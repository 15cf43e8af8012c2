#!/usr/bin/env bash
# Sequence encoders on the behaviour-sequence world: for each data size, the job spec that
# `mtps-datagen --world sequence` writes, trained by LocalTrainer with each encoder variant
# (sum, mean, DIN and its options, BST; with and without the dot interaction), each task's
# AUC at its best epoch beside the oracle.
#
# Usage: benchmarks/sequence_encoders.sh [--rows "200000 1000000"] [--seed N] [--epochs N]
#          [--variants "sum din din+dot ..."] [--jobs N] [--torch] [--build-dir DIR]
#          [--work-dir DIR]
#
# A variant is an encoder (sum, mean, din, bst) with options joined by '+': softmax
# (weights_softmax), positions (din_positions), attN (attention_hidden: [N]), dot
# (interaction: {kind: dot}), noside (drop model.sequence.side and the hist_cats feature:
# the history's items alone); the generated spec's own encoder options are dropped. With
# the side, sum and mean pool hist_cats like any multi-valued field, so "ctr - sum"
# compares variants with the same options. --torch also trains each variant in PyTorch (benchmarks/e2e_torch.py
# --per_epoch, 1 thread) on the CSV copy of the same data (WORK/ROWS/csv), in
# WORK/ROWS/VARIANT/torch/. A run whose summary.json exists is kept, not rerun. Runs go
# --jobs at a time (default 1) under `nice`. Output: WORK/table.md, each run's spec, log
# and summary.json under WORK/ROWS/VARIANT/. Targets
# (issue 13): DIN and BST >= sum pooling + 0.01 ctr AUC; mtps >= PyTorch - 0.002.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

sizes="200000 1000000"; seed=7; epochs=12; jobs=1
variants="sum din bst sum+dot din+dot bst+dot din+positions+dot din+positions+softmax+att64+dot bst+softmax+dot"
build_dir="$root/build"; work=""; torch=0
usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) sizes="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --variants) variants="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --torch) torch=1; shift ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --work-dir) work="$2"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "sequence_encoders.sh: unknown argument '$1'" >&2; usage 2 ;;
  esac
done
die() { echo "sequence_encoders.sh: $*" >&2; exit 1; }
for n in $sizes "$seed" "$epochs" "$jobs"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "counts must be positive integers, got '$n'"
done
bin="$build_dir/bin"
for b in mtps-worker mtps-datagen; do
  [ -x "$bin/$b" ] || die "$bin/$b is missing: build it (cmake --build $build_dir --target $b)"
done
[ -n "$work" ] || work="$(mktemp -d /tmp/mtps-seq-XXXXXX)"
mkdir -p "$work"

# The generated spec's model lines, rewritten for one variant.
variant_spec() {
  local spec=$1 variant=$2 encoder options="" interaction="" side=1
  encoder=${variant%%+*}
  case "$encoder" in sum|mean|din|bst) ;; *) die "unknown encoder in variant '$variant'" ;; esac
  for opt in $(tr '+' ' ' <<<"${variant#"$encoder"}"); do
    case "$opt" in
      softmax) options+=", weights_softmax: true" ;;
      positions) options+=", din_positions: true" ;;
      att[1-9]*) [[ "$opt" =~ ^att[1-9][0-9]*$ ]] || die "bad option '$opt' in variant '$variant'"
                 options+=", attention_hidden: [${opt#att}]" ;;
      dot) interaction="        interaction: {kind: dot}," ;;
      noside) side=0 ;;
      *) die "unknown option '$opt' in variant '$variant'" ;;
    esac
  done
  /usr/bin/python3 - "$spec" "$encoder$options" "$interaction" "$epochs" "$side" <<'EOF'
import re, sys
spec, encoder, interaction, epochs, side = sys.argv[1:]
text = open(spec).read()
text = re.sub(r"(?m)^\s*interaction: \{kind: dot\},\n", "", text)
# The generated spec's own encoder options go: each variant names its options.
text = re.sub(r",\s*(din_positions|weights_softmax): true", "", text)
text = re.sub(r",\s*attention_hidden: \[[^\]]*\]", "", text)
if side == "0":
    text = re.sub(r",\s*side: \[[^\]]*\]", "", text)
    text = re.sub(r"(?m)^\s*- \{name: hist_cats,.*\n", "", text)
text = re.sub(r"encoder: din\b", "encoder: %s" % encoder, text, count=1)
if interaction:
    text = text.replace("        sequence:", interaction + "\n        sequence:")
text = re.sub(r"(?m)^  epochs: \d+", "  epochs: " + epochs, text)
sys.stdout.write(text)
EOF
}

for rows in $sizes; do
  d="$work/$rows"
  if [ ! -f "$d/data/job.yaml" ]; then
    "$bin/mtps-datagen" --out "$d/data" --rows "$rows" --seed "$seed" --world sequence \
      >"$d.datagen.log" 2>&1 || { tail -5 "$d.datagen.log"; die "datagen $rows failed"; }
  fi
  if [ "$torch" = 1 ] && [ ! -f "$d/csv/job.yaml" ]; then
    "$bin/mtps-datagen" --out "$d/csv" --rows "$rows" --seed "$seed" --world sequence \
      --format csv >"$d.datagen-csv.log" 2>&1 || { tail -5 "$d.datagen-csv.log"; die "csv datagen $rows failed"; }
  fi
  echo "$rows rows: $(grep '^oracle' "$d.datagen.log" 2>/dev/null || true)"
  run_variant() {
    local v=$1
    mkdir -p "$d/$v"
    if [ ! -f "$d/$v/summary.json" ]; then
      variant_spec "$d/data/job.yaml" "$v" >"$d/$v/job.yaml"
      nice "$bin/mtps-worker" --local --config "$d/$v/job.yaml" --run_dir "$d/$v" --logtostderr \
        >"$d/$v/out.log" 2>&1 || { tail -20 "$d/$v/out.log"; die "$v on $rows rows failed"; }
    fi
    echo "  $v: $(grep -o 'best epoch.*' "$d/$v/out.log" | tail -1)"
    if [ "$torch" = 1 ] && [ ! -f "$d/$v/torch/summary.json" ]; then
      mkdir -p "$d/$v/torch"
      variant_spec "$d/csv/job.yaml" "$v" >"$d/$v/torch/job.yaml"
      (cd "$root/benchmarks" && OPENBLAS_NUM_THREADS=1 nice /usr/bin/python3 e2e_torch.py \
         --config "$d/$v/torch/job.yaml" --threads 1 --per_epoch --out "$d/$v/torch/summary.json" \
         >"$d/$v/torch/out.log" 2>&1) || { tail -20 "$d/$v/torch/out.log"; die "torch $v on $rows rows failed"; }
      echo "  $v (torch): $(grep '^epoch' "$d/$v/torch/out.log" | tail -1)"
    fi
  }
  failed=0
  for v in $variants; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || failed=1; done
    run_variant "$v" &
  done
  while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || failed=1; done
  [ "$failed" = 0 ] || die "a run on $rows rows failed"
done

/usr/bin/python3 - "$work" $sizes <<'EOF' | tee "$work/table.md"
import json, os, sys
work, sizes = sys.argv[1], sys.argv[2:]
print("| rows | variant | ctr AUC | cvr AUC | best epoch / trained | ctr - sum (same options) | ctr oracle | torch ctr / cvr |")
print("|---|---|---|---|---|---|---|---|")
for rows in sizes:
    d = os.path.join(work, rows)
    runs = {}
    for v in sorted(os.listdir(d)):
        p = os.path.join(d, v, "summary.json")
        if v not in ("data", "csv") and os.path.exists(p):
            runs[v] = json.load(open(p))
    for v, s in runs.items():
        # Like for like: sum pooling with the same options (dot, noside).
        base = runs.get("sum" + v[len(v.split("+")[0]):], {}).get("tasks", {}).get("ctr", {}).get("auc")
        ctr, cvr = s["tasks"]["ctr"], s["tasks"]["cvr"]
        delta = "%+.4f" % (ctr["auc"] - base) if base is not None else "-"
        torch = "-"
        t = os.path.join(d, v, "torch", "summary.json")
        if os.path.exists(t):
            tt = json.load(open(t))["tasks"]
            torch = "%.4f / %.4f" % (tt["ctr"]["auc"], tt["cvr"]["auc"])
        print("| %s | %s | %.4f | %.4f | %s/%s | %s | %.4f | %s |" % (
            rows, v, ctr["auc"], cvr["auc"], s.get("best_epoch", "-"), s["epochs"], delta,
            ctr.get("oracle_auc", float("nan")), torch))
EOF
