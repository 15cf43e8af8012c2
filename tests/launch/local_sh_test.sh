#!/usr/bin/env bash
# launch/local.sh, the main job, end to end on a small generated data set: a scheduler,
# 2 servers and 2 workers train MMoE and the per-task AUC table is printed; bad flags
# are refused. Usage: local_sh_test.sh BUILD_DIR
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$1"
run="$(mktemp -d)"; trap 'rm -rf "$run"' EXIT

timeout 300 bash "$root/launch/local.sh" --build-dir "$build" --run-dir "$run" --rows 30000 >"$run/out.txt" 2>&1 \
  || { cat "$run/out.txt"; exit 1; }
grep -q "2 servers, 2 workers" "$run/out.txt" || { cat "$run/out.txt"; exit 1; }
for task in ctr cvr; do
  line="$(grep -E "^$task " "$run/out.txt")" || { cat "$run/out.txt"; exit 1; }
  auc="$(echo "$line" | awk '{print $2}')"
  oracle="$(echo "$line" | awk '{print $3}')"
  # Trained: better than chance, and no better than the oracle allows.
  /usr/bin/python3 -c "import sys; a,o=float('$auc'),float('$oracle'); sys.exit(0 if 0.55 < a <= o + 0.02 else 1)" \
    || { echo "implausible $task AUC $auc (oracle $oracle)"; cat "$run/out.txt"; exit 1; }
done
test -s "$run/summary.json"
for name in scheduler server-0 server-1 worker-0 worker-1; do test -s "$run/$name.log"; done
# No process is left behind.
if pgrep -f -- "--run_dir $run" >/dev/null; then echo "processes left running"; exit 1; fi

if bash "$root/launch/local.sh" --build-dir "$build" --workers zero >"$run/bad.txt" 2>&1; then
  echo "accepted --workers zero"; exit 1
fi
grep -q "positive integers" "$run/bad.txt"
echo "local.sh: ok"
