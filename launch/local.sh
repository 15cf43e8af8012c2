#!/usr/bin/env bash
# Runs a whole mtps cluster on this machine: a scheduler, N parameter servers and M
# workers as processes on loopback, then prints the run's per-task AUC.
#
# With no arguments: installs what is missing, builds, generates a small e-commerce data
# set, trains MMoE with 2 servers and 2 workers, prints AUC beside the oracle AUC.
#
# Usage: launch/local.sh [--config FILE] [--servers N] [--workers N] [--run-dir DIR]
#                        [--device cpu|cuda:N] [--rows N] [--build-dir DIR] [--insecure]
#                        [--max-restarts N] [--heartbeat-timeout S] [--recover-timeout S]
#                        [--no-plot]
# Every run gets fresh CURVE keys (RUN/keys, from mtps-keys): all sockets are authenticated
# and encrypted. --insecure runs without them (every process logs that it is insecure).
# A server or worker that dies (a signal, or a nonzero exit while the scheduler runs) is
# started again under its rank, as Kubernetes would, at most --max-restarts times each
# (default 3); a server restores the newest checkpoint. The log says what died and when.
# A scheduler killed by a signal (not a clean SIGTERM stop) is started again on its port
# with --restore when the job has a checkpoint.dir: it goes on from its journal there.
# Progress: on a terminal, a live line (epoch, step, samples/s, loss, ETA) and a line per
# epoch; otherwise plain periodic lines. The end: the table, and RUN/auc_loss_by_epoch.png
# when python3-matplotlib is installed (unless --no-plot).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

config=""; servers=2; workers=2; run_dir=""; device=cpu; rows=200000
build_dir="$root/build"; heartbeat_timeout=10; recover_timeout=120; max_restarts=3
insecure=0; plot=1

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
# A message while the scheduler may be drawing its live line on the same terminal.
note() {
  if [ -t 2 ]; then printf '\r\033[K' >&2; fi
  echo "$@" >&2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --servers) servers="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --run-dir) run_dir="$2"; shift 2 ;;
    --device) device="$2"; shift 2 ;;
    --rows) rows="$2"; shift 2 ;;
    --build-dir) build_dir="$2"; shift 2 ;;
    --max-restarts) max_restarts="$2"; shift 2 ;;
    --heartbeat-timeout) heartbeat_timeout="$2"; shift 2 ;;
    --recover-timeout) recover_timeout="$2"; shift 2 ;;
    --insecure) insecure=1; shift ;;
    --no-plot) plot=0; shift ;;
    -h|--help) usage 0 ;;
    *) echo "local.sh: unknown argument '$1'" >&2; usage 2 ;;
  esac
done
for n in "$servers" "$workers" "$rows"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "local.sh: counts must be positive integers, got '$n'" >&2; exit 2; }
done
[[ "$max_restarts" =~ ^[0-9]+$ ]] || { echo "local.sh: --max-restarts must be an integer >= 0, got '$max_restarts'" >&2; exit 2; }
for t in "$heartbeat_timeout" "$recover_timeout"; do
  [[ "$t" =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "local.sh: timeouts are seconds, got '$t'" >&2; exit 2; }
done
[ -z "$config" ] || [ -f "$config" ] || { echo "local.sh: no such config '$config'" >&2; exit 2; }
[ -n "$run_dir" ] || run_dir="$root/runs/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$run_dir"
run_dir="$(cd "$run_dir" && pwd)"
bin="$build_dir/bin"

# Build what is missing.
need_build=0
for b in mtps-scheduler mtps-server mtps-worker mtps-datagen mtps-keys; do
  [ -x "$bin/$b" ] || need_build=1
done
if [ "$need_build" -eq 1 ]; then
  echo "local.sh: building into $build_dir (first run takes a few minutes)"
  bash "$root/launch/install-deps.sh"
  cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build_dir" -j "$(nproc)" --target mtps-scheduler mtps-server mtps-worker \
    mtps-datagen mtps-keys >"$run_dir/build.log" 2>&1 || { tail -30 "$run_dir/build.log"; exit 1; }
fi

# The built-in demo: a generated data set and the job spec written beside it.
if [ -z "$config" ]; then
  echo "local.sh: generating $rows rows of synthetic e-commerce data in $run_dir/data"
  "$bin/mtps-datagen" --out "$run_dir/data" --rows "$rows" --seed 1 \
    --train_files "$((workers > 4 ? workers : 4))" >"$run_dir/datagen.log" 2>&1 \
    || { tail -20 "$run_dir/datagen.log"; exit 1; }
  config="$run_dir/data/job.yaml"
fi

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pids=(); names=(); restarts=()
cleanup() {  # a pid of 0 marks a process that has exited: `kill 0` would hit our own group
  for pid in "${pids[@]}"; do [ "$pid" -eq 0 ] || kill "$pid" 2>/dev/null || true; done
  sleep 0.5
  for pid in "${pids[@]}"; do [ "$pid" -eq 0 ] || kill -9 "$pid" 2>/dev/null || true; done
}
trap 'echo "local.sh: interrupted, stopping every process"; cleanup; exit 130' INT TERM
# This run's own CURVE keys: one per node (scheduler, server-R, worker-R: each binary picks
# its key by its role and --rank) and the allow-list job.pub. A restart keeps its key.
if [ "$insecure" -eq 1 ]; then
  echo "local.sh: --insecure: no CURVE keys, every process runs unauthenticated"
  auth=(--insecure)
else
  "$bin/mtps-keys" --out "$run_dir/keys" --servers "$servers" --workers "$workers" >/dev/null \
    || { echo "local.sh: cannot generate CURVE keys in $run_dir/keys" >&2; exit 1; }
  auth=(--keys_dir "$run_dir/keys")
fi
sched_port="$(free_port)"
scheduler="tcp://127.0.0.1:$sched_port"
# launch NAME [restart]: starts process NAME (scheduler, server-R, worker-R) in the
# background, appending to RUN/NAME.log, its pid in $launched (not a subshell: this shell
# must be its parent to wait for it); a restart keeps the rank, and a server restores.
launch() {
  local name="$1" again="${2:-0}" rank="${1##*-}"
  case "$name" in
    scheduler) set -- "$bin/mtps-scheduler" --config "$config" --port "$sched_port" --http_port 0 \
        --num_servers "$servers" --num_workers "$workers" --run_dir "$run_dir" \
        --heartbeat_timeout "$heartbeat_timeout" --recover_timeout "$recover_timeout" --logtostderr \
        --progress_fd 3
      if [ "$again" -gt 0 ]; then set -- "$@" --restore; fi ;;
    server-*) set -- "$bin/mtps-server" --config "$config" --scheduler "$scheduler" \
        --host 127.0.0.1 --port 0 --http_port 0 --threads 2 --rank "$rank" --logtostderr
      # A restart restores the newest checkpoint, when the job writes any.
      if [ "$again" -gt 0 ] && grep -qE '^checkpoint:.*dir' "$config"; then set -- "$@" --restore; fi ;;
    worker-*) set -- "$bin/mtps-worker" --config "$config" --scheduler "$scheduler" \
        --device "$device" --http_port 0 --rank "$rank" --logtostderr ;;
  esac
  # The scheduler's fd 3 is this script's stdout: what a person watches (live on a terminal).
  if [ "$name" = scheduler ]; then
    "$@" "${auth[@]}" 3>&1 >>"$run_dir/$name.log" 2>&1 &
  else
    "$@" "${auth[@]}" >>"$run_dir/$name.log" 2>&1 &
  fi
  launched="$!"
}
start() {  # start NAME: launches it and records it
  launch "$1"
  pids+=("$launched"); names+=("$1"); restarts+=(0)
}

start scheduler
for ((s = 0; s < servers; s++)); do start "server-$s"; done
for ((w = 0; w < workers; w++)); do start "worker-$w"; done
echo "local.sh: scheduler, $servers servers and $workers workers started; logs in $run_dir"

# The scheduler ends the job; any process that fails first fails the run.
status=0
while :; do
  if ! kill -0 "${pids[0]}" 2>/dev/null; then
    rc=0; wait "${pids[0]}" || rc=$?
    # Killed (SIGKILL, a crash; not SIGTERM's clean stop, 143): the scheduler journals its
    # job under checkpoint.dir, so it is started again on the same port and goes on.
    if [ "$rc" -gt 128 ] && [ "$rc" -ne 143 ] && [ "${restarts[0]}" -lt "$max_restarts" ] \
       && grep -qE '^checkpoint:.*dir' "$config"; then
      restarts[0]=$((restarts[0] + 1))
      note "local.sh: $(date +%H:%M:%S) scheduler died (exit $rc); starting it again with --restore (restart ${restarts[0]} of $max_restarts)"
      echo "=== local.sh: restart ${restarts[0]} after exit $rc ===" >>"$run_dir/scheduler.log"
      launch scheduler "${restarts[0]}"
      pids[0]="$launched"
      note "local.sh: $(date +%H:%M:%S) scheduler is back as pid ${pids[0]}"
      continue
    fi
    status=$rc
    break
  fi
  for i in "${!pids[@]}"; do
    [ "$i" -eq 0 ] && continue
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      rc=0; wait "${pids[$i]}" || rc=$?
      # Died while the job runs (the scheduler is alive): start it again under its rank,
      # unless its status is permanent (2 bad config, 3 bad data, 4 job failed: exit_codes.h).
      if [ "$rc" -ne 0 ] && { [ "$rc" -lt 2 ] || [ "$rc" -gt 4 ]; } && kill -0 "${pids[0]}" 2>/dev/null \
         && [ "${restarts[$i]}" -lt "$max_restarts" ]; then
        restarts[$i]=$((restarts[$i] + 1))
        note "local.sh: $(date +%H:%M:%S) ${names[$i]} died (exit $rc); starting it again under its rank (restart ${restarts[$i]} of $max_restarts)"
        echo "=== local.sh: restart ${restarts[$i]} after exit $rc ===" >>"$run_dir/${names[$i]}.log"
        launch "${names[$i]}" "${restarts[$i]}"
        pids[$i]="$launched"
        note "local.sh: $(date +%H:%M:%S) ${names[$i]} is back as pid ${pids[$i]}"
        continue
      fi
      if [ "$rc" -ne 0 ]; then
        note "local.sh: ${names[$i]} failed (exit $rc); the end of its log:"
        tail -20 "$run_dir/${names[$i]}.log" >&2
        status=$rc
        break 2
      fi
      pids[$i]=0
    fi
  done
  sleep 0.5
done
if [ "$status" -ne 0 ]; then
  echo "local.sh: the run failed (exit $status); the end of the scheduler's log:" >&2
  tail -20 "$run_dir/scheduler.log" >&2
  cleanup
  exit "$status"
fi
# Let servers and workers finish their shutdown, then make sure nothing is left.
for i in "${!pids[@]}"; do
  [ "${pids[$i]}" -ne 0 ] || continue
  for _ in $(seq 1 20); do kill -0 "${pids[$i]}" 2>/dev/null || break; sleep 0.25; done
done
cleanup

/usr/bin/python3 - "$run_dir/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"\nmtps {s['model']} ({s['mode']}): {s['servers']} servers, {s['workers']} workers, "
      f"{s['epochs']} epoch(s), {s['samples']} samples in {s['train_seconds']:.1f} s "
      f"= {s['samples_per_sec']:.0f} samples/s")
if s.get("best_epoch", -1) >= 0:
    print(f"metrics of the best epoch, {s['best_epoch']}"
          + (" (early stopping ended the run)" if s.get("stopped_early") else ""))
print()
print(f"{'task':<12}{'AUC':>8}{'oracle AUC':>12}{'logloss':>10}")
for name, t in s["tasks"].items():
    oracle = t.get("oracle_auc")
    oracle = f"{oracle:.4f}" if oracle is not None else "-"
    print(f"{name:<12}{t['auc']:>8.4f}{oracle:>12}{t['logloss']:>10.4f}")
print(f"\nsummary: {sys.argv[1]}")
PY
# The curves of the run: a real plotting library (Debian's python3-matplotlib) when present.
if [ "$plot" = 0 ]; then
  :
elif /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  if png="$(/usr/bin/python3 "$root/launch/plot_run.py" "$run_dir/summary.json" 2>&1)"; then
    echo "plot: $png (per-task AUC and loss by epoch)"
  else
    echo "local.sh: no plot: $png"
  fi
else
  echo "local.sh: no plot of AUC and loss by epoch: python3-matplotlib is not installed"
fi
