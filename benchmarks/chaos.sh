#!/usr/bin/env bash
# Chaos rounds: each round runs a 2-server, 2-worker job with launch/local.sh
# (--max-restarts), kills a random server, worker or the scheduler with SIGKILL at a random
# time, and prints what was killed, the recovery time (death to the replacement rejoined,
# or the restarted scheduler restored its journal, and training going on), and the run's
# AUC beside an undisturbed run on the same data.
#
# --mode sync trains synchronously (4 epochs, early stopping on) and kills any role, as
# async mode does: after a lost server the workers send their parts of the step again to
# its replacement.
#
# --full-every N writes checkpoint.full_every: N (every N-th checkpoint of a server whole,
# the others increments), so a replaced server restores through its increment chain; the
# table's "restored" column then shows the checkpoint the replacement loaded and how many
# increments it applied ("-" for a victim that restores no tables), and "incr" how many
# checkpoint files the servers wrote as increments in the round. --victims "LIST" picks each
# round's victim from LIST (e.g. "server-0 server-1") instead of every role of the mode.
# --keep-dir DIR keeps every round's run directory (logs, checkpoints) under DIR.
#
# Usage: benchmarks/chaos.sh [--build-dir DIR] [--rounds N] [--rows N] [--seed S] [--mode async|sync]
#                            [--full-every N] [--victims "LIST"] [--keep-dir DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$root/build"; rounds=10; rows=200000; seed=1; mode=async; full_every=1; victims=""; keep=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --rows) rows="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --mode) mode="$2"; shift 2 ;;
    --full-every) full_every="$2"; shift 2 ;;
    --victims) victims="$2"; shift 2 ;;
    --keep-dir) keep="$2"; shift 2 ;;
    *) echo "chaos.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
case "$full_every" in ''|*[!0-9]*) echo "chaos.sh: --full-every must be a whole number, got '$full_every'" >&2; exit 2 ;; esac
RANDOM="$seed"
if [ -n "$keep" ]; then
  mkdir -p "$keep"; work="$(mktemp -d "$keep/chaos.XXXXXX")"; echo "run directories under $work"
else
  work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
fi
heartbeat=2

"$build/bin/mtps-datagen" --out "$work/data" --rows "$rows" --seed 1 --train_files 4 >/dev/null 2>&1
sed -e '/^checkpoint:/,$d' "$work/data/job.yaml" >"$work/job.yaml"
case "$mode" in
  async) roles=(server-0 server-1 worker-0 worker-1 scheduler) ;;
  sync)
    # Sync steps are slower: 4 epochs. Early stopping stays: a replaced worker takes over
    # the job's evaluations of the earlier epochs and stops with the others.
    sed -i -e 's/^  mode: async/  mode: sync/' -e 's/^  epochs: .*/  epochs: 4/' "$work/job.yaml"
    roles=(server-0 server-1 worker-0 worker-1 scheduler) ;;
  *) echo "chaos.sh: --mode must be async or sync, got '$mode'" >&2; exit 2 ;;
esac
if [ -n "$victims" ]; then read -r -a roles <<<"$victims"; fi

# run NAME [VICTIM]: one job; VICTIM (server-R, worker-R or scheduler) is killed at a random time.
run() {
  local name="$1" victim="${2:-}" out="$work/$1"
  sed "s#^checkpoint:.*##" "$work/job.yaml" >"$out.yaml" 2>/dev/null || true
  printf 'checkpoint: {dir: "%s/ckpt", interval_steps: 20, full_every: %s}\n' "$out" "$full_every" >>"$out.yaml"
  bash "$root/launch/local.sh" --build-dir "$build" --run-dir "$out" --config "$out.yaml" \
    --heartbeat-timeout "$heartbeat" --max-restarts 2 >"$out.txt" 2>&1 &
  local runner=$! killed_at="" recovered_at=""
  if [ -n "$victim" ]; then
    # A random moment after training started: after the first committed checkpoint plus 0-2 s;
    # with increments, after the k-th (k in 2..full_every: the newest is then an increment)
    # plus 0-1 s, so that a replaced server's restore has a chain to go through.
    local wait_for=1 extra=$((RANDOM % 2))
    if [ "$full_every" -gt 1 ]; then wait_for=$((2 + RANDOM % (full_every - 1))); extra=0; fi
    for _ in $(seq 1 1200); do
      [ "$(cat "$out/scheduler.log" 2>/dev/null | grep -c "is whole")" -ge "$wait_for" ] && break
      grep -q "job finished\|job failed" "$out/scheduler.log" 2>/dev/null && break
      sleep 0.05
    done
    sleep "0.$((RANDOM % 10))$((RANDOM % 10))"; sleep "$extra"
    local role="${victim%-*}" rank="${victim##*-}"
    local pid back="$role $rank (.*) rejoined"
    if [ "$victim" = scheduler ]; then
      # glog's thread id of the main thread is the process id.
      pid="$(sed -n 's/^I[0-9]* [0-9:.]* *\([0-9]*\) scheduler_main.cc.*listening.*/\1/p' "$out/scheduler.log" | head -1)"
      back="restored the running job"
    else
      pid="$(sed -n "s/.*$role $rank registered from .* pid \([0-9]*\)).*/\1/p" "$out/scheduler.log" | head -1)"
    fi
    if [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; then
      killed_at="$(date +%s.%N)"
      # Recovered: the replacement rejoined, then a worker logged a training step.
      for _ in $(seq 1 1200); do
        if grep -q "$back" "$out/scheduler.log"; then
          local steps_before; steps_before="$(cat "$out"/worker-*.log | grep -c " step ")"
          for _ in $(seq 1 400); do
            [ "$(cat "$out"/worker-*.log | grep -c " step ")" -gt "$steps_before" ] && break
            grep -q "job finished" "$out/scheduler.log" && break
            sleep 0.05
          done
          recovered_at="$(date +%s.%N)"; break
        fi
        grep -q "job finished\|job failed" "$out/scheduler.log" 2>/dev/null && break
        sleep 0.05
      done
    fi
  fi
  local rc=0; wait "$runner" || rc=$?
  local aucs; aucs="$(/usr/bin/python3 -c "
import json,sys
try:
  s=json.load(open('$out/summary.json')); print(' '.join('%.4f' % t['auc'] for t in s['tasks'].values()))
except Exception: print('- -')")"
  local recovery="-"
  if [ -n "$killed_at" ] && [ -n "$recovered_at" ]; then
    recovery="$(/usr/bin/python3 -c "print('%.1f' % ($recovered_at - $killed_at))")"
  fi
  local pause; pause="$(grep -o 'paused [0-9]* ms' "$out/scheduler.log" | awk '{print $2}' | sort -n | tail -1)"
  # What a replaced server loaded: "ckpt <id> +<increments applied>" (its restore line).
  local restored="-"
  if [ "${victim%-*}" = server ]; then
    restored="$(sed -n 's/.*restored .* (checkpoint \([0-9]*\), step [0-9]*, \([0-9]*\) increments applied.*/ckpt \1 +\2/p' \
      "$out/$victim.log" | tail -1)"
    grep -q "starts empty\|no checkpoint" "$out/$victim.log" && [ -z "$restored" ] && restored="empty"
    restored="${restored:-none}"
  fi
  local incr; incr="$(cat "$out"/server-*.log | grep -c "tables incremental over checkpoint" || true)"
  echo "$rc|$recovery|$aucs|${pause:--}|$restored|$incr"
}

IFS='|' read -r base_rc _ base_aucs _ _ base_incr <<<"$(run baseline)"
echo "undisturbed run: exit $base_rc, AUC (ctr cvr) $base_aucs, incremental checkpoint files $base_incr"
printf '%-6s %-10s %-5s %-11s %-16s %-16s %-13s %-14s %s\n' round killed exit recovery_s "auc ctr/cvr" \
  "baseline" "max_pause_ms" restored incr
ok=0; within=0
for ((r = 1; r <= rounds; r++)); do
  victim="${roles[$((RANDOM % ${#roles[@]}))]}"
  IFS='|' read -r rc recovery aucs pause restored incr <<<"$(run "round$r" "$victim")"
  read -r a1 a2 <<<"$aucs"; read -r b1 b2 <<<"$base_aucs"
  close="$(/usr/bin/python3 -c "
try: print('yes' if abs($a1-$b1) <= 0.01 and abs($a2-$b2) <= 0.01 else 'no')
except Exception: print('no')")"
  [ "$rc" -eq 0 ] && ok=$((ok + 1))
  [ "$close" = yes ] && within=$((within + 1))
  printf '%-6s %-10s %-5s %-11s %-16s %-16s %-13s %-14s %s\n' "$r" "$victim" "$rc" "$recovery" "$a1/$a2" \
    "$b1/$b2" "$pause" "$restored" "$incr"
done
echo "completed $ok of $rounds; AUC within 0.01 of the undisturbed run in $within of $rounds"
echo "($mode mode; checkpoint every 20 steps, full_every $full_every; heartbeat timeout $heartbeat s; recovery = SIGKILL to the replacement rejoined, or the scheduler restored, and the next training step)"
