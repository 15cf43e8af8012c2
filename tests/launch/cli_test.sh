#!/usr/bin/env bash
# What a user sees of every binary: --help lists the program's own flags only and exits 0,
# --version names the release and git commit, ports outside [0, 65535] and a missing GPU are
# refused before anything connects, and a worker stops on SIGTERM without a stack trace.
# Usage: cli_test.sh BUILD_DIR
set -euo pipefail
bin="$1/bin"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/job.yaml" <<'YAML'
features: {sparse: [{name: user, table: user}]}
tables: [{name: user, dim: 8}]
model: {type: mmoe}
tasks: [{name: ctr, label: click}]
YAML
fail() { echo "cli_test: $*" >&2; exit 1; }

for prog in mtps-scheduler mtps-server mtps-worker mtps-keys mtps-datagen mtps-plan; do
  for flag in --help --helpshort -h; do
    "$bin/$prog" "$flag" >"$tmp/help" 2>&1 || fail "$prog $flag exited $?"
    head -1 "$tmp/help" | grep -Eq "^$prog [0-9]+\.[0-9]+\.[0-9]+ \(git ([0-9a-f]{12}|unknown)\)$" \
      || fail "$prog $flag: first line $(head -1 "$tmp/help")"
    grep -q "^usage: $prog" "$tmp/help" || fail "$prog $flag: no usage line"
    ! grep -Eq -- "--(logtostderr|flagfile|v |vmodule|tryfromenv)" "$tmp/help" \
      || fail "$prog $flag lists glog/gflags flags"
    [ "$(wc -l <"$tmp/help")" -le 60 ] || fail "$prog $flag: $(wc -l <"$tmp/help") lines"
  done
  "$bin/$prog" --version >"$tmp/version" 2>&1 || fail "$prog --version exited $?"
  [ "$(wc -l <"$tmp/version")" -eq 1 ] && grep -Eq "^$prog [0-9.]+ \(git " "$tmp/version" \
    || fail "$prog --version: $(cat "$tmp/version")"
done
grep -q -- "--num_servers" <("$bin/mtps-scheduler" --help) || fail "scheduler --help lacks --num_servers"
grep -q -- "--keys_dir" <("$bin/mtps-server" --help) || fail "server --help lacks the shared --keys_dir"
grep -q -- "--device" <("$bin/mtps-worker" --help) || fail "worker --help lacks --device"

# Ports outside [0, 65535] are refused (exit 2, the flag named); 0 stays "any free port".
refused() {  # expected-text command...
  local expect="$1"; shift
  local rc=0; timeout 20 "$@" >"$tmp/out" 2>&1 || rc=$?
  [ "$rc" -eq 2 ] || fail "$* exited $rc, not 2: $(tail -3 "$tmp/out")"
  grep -q -- "$expect" "$tmp/out" || fail "$*: no '$expect' in $(tail -3 "$tmp/out")"
}
refused "--port must be a TCP port" "$bin/mtps-scheduler" --config "$tmp/job.yaml" --port 70000 --insecure
refused "--http_port must be a TCP port" "$bin/mtps-scheduler" --config "$tmp/job.yaml" --http_port -1 --insecure
refused "--port must be a TCP port" "$bin/mtps-server" --standalone --config "$tmp/job.yaml" --port 65536 --insecure
refused "--http_port must be a TCP port" "$bin/mtps-worker" --config "$tmp/job.yaml" --http_port 100000 \
  --scheduler tcp://127.0.0.1:1 --insecure
# Authenticated by default: with neither --keys_dir nor --insecure every node refuses to
# start, before any socket exists, naming both choices.
refused "pass --keys_dir DIR" "$bin/mtps-scheduler" --config "$tmp/job.yaml"
refused "pass --keys_dir DIR" "$bin/mtps-server" --standalone --config "$tmp/job.yaml"
refused "or --insecure" "$bin/mtps-worker" --config "$tmp/job.yaml" --scheduler tcp://127.0.0.1:1
# A GPU that is not there: refused at once, before registering with any scheduler.
if ! nvidia-smi -L >/dev/null 2>&1; then
  refused "--device cuda:0" "$bin/mtps-worker" --config "$tmp/job.yaml" --device cuda:0 \
    --scheduler tcp://127.0.0.1:1 --insecure
fi

# SIGTERM: a worker waiting for its scheduler stops with 143 and one line, no stack trace.
"$bin/mtps-worker" --config "$tmp/job.yaml" --scheduler tcp://127.0.0.1:1 --insecure >"$tmp/worker" 2>&1 &
pid=$!
for _ in $(seq 1 200); do grep -q "INSECURE" "$tmp/worker" && break; sleep 0.05; done  # poll, 10 s at most
grep -q "INSECURE" "$tmp/worker" || { kill -9 "$pid"; fail "worker did not start: $(cat "$tmp/worker")"; }
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
[ "$rc" -eq 143 ] || fail "worker exited $rc on SIGTERM, not 143: $(tail -5 "$tmp/worker")"
grep -q "SIGTERM, stopping" "$tmp/worker" || fail "no stop line: $(tail -5 "$tmp/worker")"
! grep -q "\*\*\* SIGTERM received\|Check failure stack trace\|@ *0x" "$tmp/worker" \
  || fail "a stack trace on SIGTERM: $(cat "$tmp/worker")"
echo "cli_test: 6 programs' --help/--version, port and device checks, worker SIGTERM: ok"
