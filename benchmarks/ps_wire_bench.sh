#!/usr/bin/env bash
# Parameter-server push and pull across processes, interleaved with raw ZeroMQ moving the
# same bytes: real mtps-server processes (Adagrad applied on every push) against raw
# ROUTER sinks, 1 and 2 servers, dim 16 and 64, 100k keys per operation.
#
#   benchmarks/ps_wire_bench.sh [--build DIR] [--rounds N] [--seconds S] [--dims "16 64"] [--servers "1 2"]
#                               [--threads N]
#
# Each round runs mtps and raw back to back for every (servers, dim, op), so load on this
# shared machine hits both alike; the table prints medians over rounds and mtps as % of raw.
# --threads: the servers' shard threads (mtps-server --threads; its default otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."

build=build rounds=5 seconds=2 dims="16 64" server_counts="1 2" threads=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --dims) dims=$2; shift 2 ;;
    --servers) server_counts=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    -h|--help) sed -n 2,11p "$0"; exit 0 ;;
    *) echo "ps_wire_bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
bin=$build/bin
for b in mtps-server ps_wire_bench; do
  [ -x "$bin/$b" ] || { echo "ps_wire_bench.sh: $bin/$b is missing; build first" >&2; exit 1; }
done

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# CPU seconds the given processes (all their threads) have used so far.
cpu_seconds() {
  local ns=0 t
  for p in "$@"; do
    for t in /proc/"$p"/task/*/schedstat; do ns=$((ns + $(cut -d' ' -f1 "$t" 2>/dev/null || echo 0))); done
  done
  echo "$ns" | awk '{printf "%.4f", $1 / 1e9}'
}

# Runs one client (the arguments), and appends its line with the CPU seconds the serving
# processes (SERVING_PIDS) used meanwhile.
run_client() {
  local before after line
  before=$(cpu_seconds "${serving_pids[@]}")
  line=$("$@")
  after=$(cpu_seconds "${serving_pids[@]}")
  echo "$line $(awk -v a="$after" -v b="$before" 'BEGIN{printf "%.4f", a - b}')" >> "$results"
}

wait_for_file() {
  for _ in $(seq 1 200); do [ -s "$1" ] && return 0; sleep 0.05; done
  echo "ps_wire_bench.sh: $1 never appeared" >&2; exit 1
}

results=$work/results.txt
: > "$results"
for dim in $dims; do
  cat > "$work/job-$dim.yaml" <<YAML
name: wire-bench
data: {format: mtb, train: [unused.mtb]}
features:
  sparse:
    - {name: f, table: t}
tables:
  - name: t
    dim: $dim
    optimizer: {type: adagrad, lr: 0.01}
model: {type: mmoe}
tasks:
  - {name: ctr, label: click, loss: bce}
YAML
  for servers in $server_counts; do
    mtps_eps="" raw_eps="" mtps_pids=() sink_pids=()
    for r in $(seq 0 $((servers - 1))); do
      pf=$work/server-$dim-$servers-$r.port
      "$bin/mtps-server" --standalone --config "$work/job-$dim.yaml" --host 127.0.0.1 --port 0 \
        --rank "$r" --num_servers "$servers" --port_file "$pf" --insecure ${threads:+--threads "$threads"} \
        2>"$work/server-$r.log" &
      pids+=($!) mtps_pids+=($!)
      sf=$work/sink-$dim-$servers-$r.port
      "$bin/ps_wire_bench" --role=sink --port_file "$sf" &
      pids+=($!) sink_pids+=($!)
      wait_for_file "$pf"; wait_for_file "$sf"
      mtps_eps+="${mtps_eps:+,}tcp://127.0.0.1:$(cut -d' ' -f1 "$pf")"
      raw_eps+="${raw_eps:+,}tcp://127.0.0.1:$(cat "$sf")"
    done
    for round in $(seq 1 "$rounds"); do
      for op in pull push; do
        serving_pids=("${mtps_pids[@]}")
        run_client "$bin/ps_wire_bench" --role=mtps --config "$work/job-$dim.yaml" --servers "$mtps_eps" --dim "$dim" --op "$op" --seconds "$seconds"
        serving_pids=("${sink_pids[@]}")
        run_client "$bin/ps_wire_bench" --role=raw --servers "$raw_eps" --dim "$dim" --op "$op" --seconds "$seconds"
      done
    done
    echo "ps_wire_bench.sh: dim $dim, $servers server(s) done" >&2
  done
done

/usr/bin/python3 - "$results" "$rounds" "${threads:+, $threads shard threads per server}" <<'PY'
import sys, statistics, collections
runs = collections.defaultdict(list)
cpu = collections.defaultdict(list)  # (client, server) CPU ms per operation
for line in open(sys.argv[1]):
    role, op, dim, servers, keys_s, mb_s, ops, client_s, server_s = line.split()
    key = (op, int(dim), int(servers), role)
    runs[key].append(float(keys_s))
    cpu[key].append((1e3 * float(client_s) / int(ops), 1e3 * float(server_s) / int(ops)))
print(f"ps_wire_bench: 100k keys per operation, medians of {sys.argv[2]} interleaved rounds (min..max){sys.argv[3]}")
print("CPU ms per operation: the client process, and the serving processes (mtps servers or raw sinks; their share includes the client's warm-up)")
print(f"{'op':5} {'dim':>4} {'servers':>7} {'mtps Mkeys/s':>18} {'raw Mkeys/s':>18} {'mtps % raw':>10}"
      f" {'mtps CPU cli+srv':>17} {'raw CPU cli+srv':>16}")
for (op, dim, servers) in sorted({k[:3] for k in runs}):
    m, r = runs[(op, dim, servers, 'mtps')], runs[(op, dim, servers, 'raw')]
    fmt = lambda v: f"{statistics.median(v)/1e6:6.2f} ({min(v)/1e6:.2f}..{max(v)/1e6:.2f})"
    def cpu_of(role):
        c = cpu[(op, dim, servers, role)]
        return f"{statistics.median(x for x, _ in c):.2f}+{statistics.median(y for _, y in c):.2f}"
    print(f"{op:5} {dim:>4} {servers:>7} {fmt(m):>18} {fmt(r):>18} {100*statistics.median(m)/statistics.median(r):9.1f}%"
          f" {cpu_of('mtps'):>17} {cpu_of('raw'):>16}")
PY
