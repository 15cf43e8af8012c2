#!/usr/bin/env bash
# launch/local.sh restarts what dies: the scheduler, then a server, killed with SIGKILL
# mid-training are started again (the scheduler with --restore, going on from its journal;
# the server under its rank, restoring the newest checkpoint), the log says what died and
# when it came back, and the run completes with a plausible AUC.
# Usage: local_sh_restart_test.sh BUILD_DIR
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="$1"
run="$(mktemp -d)"; trap 'rm -rf "$run"' EXIT

# The data set and a job spec with periodic checkpoints.
"$build/bin/mtps-datagen" --out "$run/data" --rows 120000 --seed 1 --train_files 4 >/dev/null 2>&1
sed -e '/^checkpoint:/,$d' "$run/data/job.yaml" >"$run/job.yaml"
printf 'checkpoint: {dir: "%s/ckpt", interval_steps: 10}\n' "$run" >>"$run/job.yaml"

timeout 300 bash "$root/launch/local.sh" --build-dir "$build" --run-dir "$run/out" --config "$run/job.yaml" \
  --heartbeat-timeout 2 --max-restarts 2 >"$run/out.txt" 2>&1 &
runner=$!

# Polls (bounded) until a file holds a pattern.
wait_for() {  # wait_for FILE PATTERN SECONDS
  for _ in $(seq 1 $(( $3 * 20 ))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "timed out waiting for '$2' in $1"; cat "$run/out.txt"; exit 1
}
wait_for "$run/out/scheduler.log" "is whole" 120
# glog's thread id on the scheduler's "listening" line is its process id.
scheduler="$(sed -n 's/^I[0-9]* [0-9:.]* *\([0-9]*\) scheduler_main.cc.*listening.*/\1/p' "$run/out/scheduler.log" | head -1)"
[ -n "$scheduler" ] || { echo "no scheduler pid in its log"; exit 1; }
kill -9 "$scheduler"
wait_for "$run/out.txt" "scheduler is back" 30
wait_for "$run/out/scheduler.log" "restored the running job" 30
# The scheduler logs each registration: "server 1 registered from ADDR (HOST pid N)".
victim="$(sed -n 's/.*server 1 registered from .* pid \([0-9]*\)).*/\1/p' "$run/out/scheduler.log" | head -1)"
[ -n "$victim" ] || { echo "no server 1 in the scheduler's log"; exit 1; }
kill -9 "$victim"
wait_for "$run/out.txt" "server-1 is back" 30
wait_for "$run/out/scheduler.log" "server 1 (.*) rejoined" 60
wait "$runner" || { echo "local.sh failed"; cat "$run/out.txt"; tail -30 "$run/out/scheduler.log"; exit 1; }

grep -q "server-1 died (exit 137)" "$run/out.txt" || { cat "$run/out.txt"; exit 1; }
grep -q "scheduler died (exit 137)" "$run/out.txt" || { cat "$run/out.txt"; exit 1; }
grep -q "restored" "$run/out/server-1.log" || { tail -30 "$run/out/server-1.log"; exit 1; }
for task in ctr cvr; do
  auc="$(grep -E "^$task " "$run/out.txt" | awk '{print $2}')"
  /usr/bin/python3 -c "import sys; sys.exit(0 if float('$auc') > 0.6 else 1)" \
    || { echo "implausible $task AUC '$auc'"; cat "$run/out.txt"; exit 1; }
done
if pgrep -f -- "--run_dir $run/out" >/dev/null; then echo "processes left running"; exit 1; fi

if bash "$root/launch/local.sh" --build-dir "$build" --max-restarts -1 >"$run/bad.txt" 2>&1; then
  echo "accepted --max-restarts -1"; exit 1
fi
grep -q "max-restarts" "$run/bad.txt"
echo "local.sh restarts: ok"
