#!/usr/bin/env bash
# Forward + backward samples/s of the reference MMoE (8 experts x 64, towers of 32, 8 sparse
# fields of dim 16, 2 tasks, batch 1024) on the CPU: mtps (models_bench) beside PyTorch
# (Debian's python3-torch, benchmarks/models_vs_torch.py), same thread counts, and the ratio;
# likewise MMoE + DIN and MMoE + BST over a behaviour sequence of 1..20 items, and
# MmoeDinSide / MmoeBstSide: the same with the history's side sequence (model.sequence.side,
# as the items' categories) and softmax weights (DIN with positions), as the example specs.
#
#   benchmarks/models_vs_torch.sh [build-dir]       # default: build
#   MODELS="MmoeDin MmoeBst" THREADS=1 REPS=3 benchmarks/models_vs_torch.sh build
#
# Each side runs REPS times per thread count; the median and the range are printed, since
# the machine may be shared. Needs: apt-get install -y python3-torch (runs under /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
reps=${REPS:-5}
models=${MODELS:-Mmoe MmoeDin MmoeBst MmoeDinSide MmoeBstSide}
thread_counts=${THREADS:-1 2}
if [ ! -x "$build/bin/models_bench" ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMTPS_CUDA=OFF >/dev/null
  cmake --build "$build" --target models_bench -j "$(nproc)"
fi
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "models_vs_torch.sh: PyTorch missing; apt-get install -y python3-torch" >&2
  exit 1
fi

summary() {  # reads numbers, prints "median (min..max)"
  sort -g | awk '{v[NR]=$1} END {printf "%.0f (%.0f..%.0f)", v[int((NR+1)/2)], v[1], v[NR]}'
}

printf "%-8s %-8s %-24s %-24s %-12s %s\n" model threads "mtps samples/s" "torch samples/s" \
  "mtps/torch" "cpu ms/step mtps | torch (medians; all threads of the process)"
for model in $models; do
case $model in
  Mmoe) encoder=(--encoder none) ;;
  MmoeDin) encoder=(--encoder din) ;;
  MmoeBst) encoder=(--encoder bst) ;;
  MmoeDinSide) encoder=(--encoder din --side --positions --softmax --attention_hidden 64) ;;
  MmoeBstSide) encoder=(--encoder bst --side --softmax) ;;
  *) echo "models_vs_torch.sh: unknown model $model (Mmoe, MmoeDin, MmoeBst, MmoeDinSide, MmoeBstSide)" >&2; exit 2 ;;
esac
for threads in $thread_counts; do
  export OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
  json=$("$build/bin/models_bench" --benchmark_filter="/$model/threads:$threads/" \
      --benchmark_repetitions="$reps" --benchmark_min_time=1 --benchmark_format=json 2>/dev/null)
  field() {  # field NAME: one value per repetition
    /usr/bin/python3 -c '
import json, sys
for b in json.load(sys.stdin)["benchmarks"]:
    if b.get("run_type") == "iteration":
        print(b[sys.argv[1]])' "$1" <<<"$json"
  }
  mtps_blas=$(/usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["context"].get("blas_kernels", "?"))' <<<"$json")
  mtps=$(field "samples/s" | summary)
  mtps_cpu=$(field cpu_time | sort -g | awk '{v[NR]=$1} END {printf "%.1f", v[int((NR+1)/2)]}')
  torch_runs=$(for _ in $(seq "$reps"); do
      /usr/bin/python3 benchmarks/models_vs_torch.py --threads "$threads" --seconds 2 \
        "${encoder[@]}"
    done)
  torch=$(sed -E 's/.*samples\/s=([0-9.]+).*/\1/' <<<"$torch_runs" | summary)
  torch_blas=$(sed -nE '1s/.* blas=([^ ]+) .*/\1/p' <<<"$torch_runs")
  torch_cpu=$(sed -E 's/.*cpu_ms\/step=([0-9.]+).*/\1/' <<<"$torch_runs" | sort -g |
    awk '{v[NR]=$1} END {printf "%.1f", v[int((NR+1)/2)]}')
  ratio=$(awk -v a="${mtps%% *}" -v b="${torch%% *}" 'BEGIN {printf "%.2fx", a / b}')
  printf "%-8s %-8s %-24s %-24s %-12s %s | %s\n" "$model" "$threads" "$mtps" "$torch" "$ratio" \
    "$mtps_cpu" "$torch_cpu"
done
done
# Both sides run OpenBLAS's best kernels for this CPU (models/blas_core.h, openblas_kernels.py).
echo "OpenBLAS kernels: mtps ${mtps_blas:-?}, torch ${torch_blas:-?}"
