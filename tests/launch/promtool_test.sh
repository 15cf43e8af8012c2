#!/usr/bin/env bash
# /metrics of the scheduler and of a parameter server pass `promtool check metrics` (Debian's
# prometheus package): counters typed as counters, units in names, plus the process_* series,
# mtps_build_info and the job phase as a labelled series. Usage: promtool_test.sh BUILD_DIR
set -euo pipefail
bin="$1/bin"
command -v promtool >/dev/null || { echo "SKIP: promtool not installed (Debian package prometheus)"; exit 77; }
tmp="$(mktemp -d)"; pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$tmp"' EXIT
cat >"$tmp/job.yaml" <<'YAML'
features: {sparse: [{name: user, table: user}]}
tables: [{name: user, dim: 8}]
model: {type: mmoe}
tasks: [{name: ctr, label: click}]
YAML
fail() { echo "promtool_test: $*" >&2; exit 1; }
scrape() { /usr/bin/python3 -c "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$1/metrics', timeout=5).read().decode())"; }
wait_for() {  # file pattern: polls up to 20 s
  for _ in $(seq 1 200); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  fail "no '$2' in $1: $(tail -5 "$1")"
}

"$bin/mtps-server" --standalone --config "$tmp/job.yaml" --host 127.0.0.1 --port 0 --http_port 0 \
  --port_file "$tmp/server.ports" --insecure >"$tmp/server.log" 2>&1 &
pids+=($!)
"$bin/mtps-scheduler" --config "$tmp/job.yaml" --host 127.0.0.1 --port 0 --http_port 0 \
  --register_timeout 60 --insecure >"$tmp/scheduler.log" 2>&1 &
pids+=($!)
wait_for "$tmp/server.ports" "^[0-9]+ [0-9]+"
wait_for "$tmp/scheduler.log" "http on port [0-9]+"
server_http="$(awk '{print $2}' "$tmp/server.ports")"
scheduler_http="$(grep -oE "http on port [0-9]+" "$tmp/scheduler.log" | grep -oE "[0-9]+$")"

for who in server scheduler; do
  port="${who}_http"
  scrape "${!port}" >"$tmp/$who.txt" || fail "cannot scrape the $who"
  promtool check metrics <"$tmp/$who.txt" >"$tmp/$who.lint" 2>&1 \
    || fail "$who: promtool check metrics: $(cat "$tmp/$who.lint")"
  for want in "# TYPE process_cpu_seconds_total counter" "# TYPE process_resident_memory_bytes gauge" \
              "process_open_fds " "process_start_time_seconds " 'mtps_build_info{version="'; do
    grep -qF "$want" "$tmp/$who.txt" || fail "$who: no '$want'"
  done
  grep -qE '^mtps_build_info\{version="[0-9.]+",commit="([0-9a-f]{12}|unknown)"\} 1$' "$tmp/$who.txt" \
    || fail "$who: $(grep mtps_build_info "$tmp/$who.txt")"
done
grep -qF "# TYPE mtps_ps_table_admitted_total counter" "$tmp/server.txt" || fail "table counts are not counters"
grep -qF 'mtps_scheduler_job_state{phase="forming"} 1' "$tmp/scheduler.txt" || fail "no labelled job phase"
grep -qF 'mtps_scheduler_job_state{phase="running"} 0' "$tmp/scheduler.txt" || fail "no labelled job phase"
echo "promtool_test: scheduler and server /metrics pass promtool check metrics"
