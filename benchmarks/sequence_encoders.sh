#!/usr/bin/env bash
# Sequence encoders on the behaviour-sequence world: for each data size, the job spec that
# `mtps-datagen --world sequence` writes, trained by LocalTrainer with each encoder variant
# (sum, mean, DIN and its options, BST; with and without the dot interaction), each task's
# AUC at its best epoch beside the oracle.
#
# Usage: benchmarks/sequence_encoders.sh [--rows "200000 1000000"] [--seed N] [--epochs N]
#          [--variants "sum din din+dot ..."] [--build-dir DIR] [--work-dir DIR]
#
# A variant is an encoder (sum, mean, din, bst) with options joined by '+': softmax
# (weights_softmax), positions (din_positions), dot (interaction: {kind: dot}). Runs go one
# after another under `nice`. Output: WORK/table.md, each run's spec, log and summary.json
# under WORK/ROWS/VARIANT/. Target (issue 13): DIN and BST >= sum pooling + 0.01 ctr AUC.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

sizes="200000 1000000"; seed=7; epochs=12
variants="sum mean din din+softmax din+positions bst sum+dot din+dot bst+dot"
build_dir="$root/build"; work=""
usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) sizes="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --variants) variants="$2"; shift 2 ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --work-dir) work="$2"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "sequence_encoders.sh: unknown argument '$1'" >&2; usage 2 ;;
  esac
done
die() { echo "sequence_encoders.sh: $*" >&2; exit 1; }
for n in $sizes "$seed" "$epochs"; do
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
  local spec=$1 variant=$2 encoder options="" interaction=""
  encoder=${variant%%+*}
  case "$encoder" in sum|mean|din|bst) ;; *) die "unknown encoder in variant '$variant'" ;; esac
  for opt in $(tr '+' ' ' <<<"${variant#"$encoder"}"); do
    case "$opt" in
      softmax) options+=", weights_softmax: true" ;;
      positions) options+=", din_positions: true" ;;
      dot) interaction="        interaction: {kind: dot}," ;;
      *) die "unknown option '$opt' in variant '$variant'" ;;
    esac
  done
  /usr/bin/python3 - "$spec" "$encoder$options" "$interaction" "$epochs" <<'EOF'
import re, sys
spec, encoder, interaction, epochs = sys.argv[1:]
text = open(spec).read()
text = re.sub(r"(?m)^\s*interaction: \{kind: dot\},\n", "", text)
text = text.replace("encoder: din}", "encoder: %s}" % encoder)
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
  echo "$rows rows: $(grep '^oracle' "$d.datagen.log" 2>/dev/null || true)"
  for v in $variants; do
    mkdir -p "$d/$v"
    variant_spec "$d/data/job.yaml" "$v" >"$d/$v/job.yaml"
    nice "$bin/mtps-worker" --local --config "$d/$v/job.yaml" --run_dir "$d/$v" --logtostderr \
      >"$d/$v/out.log" 2>&1 || { tail -20 "$d/$v/out.log"; die "$v on $rows rows failed"; }
    echo "  $v: $(grep -o 'best epoch.*' "$d/$v/out.log" | tail -1)"
  done
done

/usr/bin/python3 - "$work" $sizes <<'EOF' | tee "$work/table.md"
import json, os, sys
work, sizes = sys.argv[1], sys.argv[2:]
print("| rows | variant | ctr AUC | cvr AUC | best epoch / trained | ctr - sum | ctr oracle |")
print("|---|---|---|---|---|---|---|")
for rows in sizes:
    d = os.path.join(work, rows)
    runs = {}
    for v in sorted(os.listdir(d)):
        p = os.path.join(d, v, "summary.json")
        if v != "data" and os.path.exists(p):
            runs[v] = json.load(open(p))
    base = runs.get("sum", {}).get("tasks", {}).get("ctr", {}).get("auc")
    for v, s in runs.items():
        ctr, cvr = s["tasks"]["ctr"], s["tasks"]["cvr"]
        delta = "%+.4f" % (ctr["auc"] - base) if base is not None else "-"
        print("| %s | %s | %.4f | %.4f | %s/%s | %s | %.4f |" % (
            rows, v, ctr["auc"], cvr["auc"], s.get("best_epoch", "-"), s["epochs"], delta,
            ctr.get("oracle_auc", float("nan"))))
EOF
