#!/usr/bin/env bash
# Runs an mtps job on Kubernetes: renders launch/k8s/*.yaml (Indexed Jobs behind headless
# Services, CURVE keys in Secrets, spec in a ConfigMap) and applies, inspects or deletes it.
#
#   launch/k8s.sh render --spec job.yaml --image REG/mtps:TAG [options] > job-k8s.yaml
#   launch/k8s.sh up     --spec job.yaml --image REG/mtps:TAG [options]
#   launch/k8s.sh status|logs|down --job NAME [--namespace NS]
#
# render/up options:
#   --spec FILE            the job spec (required); its data paths must lie under --data-dir
#   --image IMAGE          CPU image for scheduler and servers (required; launch/Dockerfile)
#   --worker-image IMAGE   workers' image (default: IMAGE, or IMAGE-cuda with --device cuda)
#   --job NAME             job name, a DNS label of at most 40 characters (default: mtps)
#   --servers N            parameter servers (default 2)    --workers N   workers (default 2)
#   --device cpu|cuda      workers' device; cuda gives each worker one GPU (default cpu)
#   --data-claim NAME      existing PersistentVolumeClaim holding the data (default mtps-data)
#   --data-dir DIR         the directory of this machine that the data claim holds
#                          (default: the spec's directory)
#   --shared-claim NAME    existing ReadWriteMany claim for checkpoints and the run directory
#                          (default: render JOB-shared of --shared-storage, e.g. 50Gi)
#   --server-threads N     shard threads = CPU request per server (default 4)
#   --server-memory Q      memory per server, e.g. 16Gi; tables stop growing at 80% (16Gi)
#   --worker-cpus N        --cpu_threads = CPU request per worker (default 4)
#   --worker-memory Q      memory per worker (default 16Gi)
#   --heartbeat-timeout S  seconds of silence before a node is lost (default 30)
#   --recover-timeout S    seconds a lost rank waits for its replacement pod (default 600)
#   --max-restarts N       retryable failures allowed per pod (backoffLimit; default 3)
#   --ttl S                seconds finished Jobs are kept before deletion (default 86400)
#   --gang none|volcano    gang scheduling through a Volcano PodGroup (default none)
#   --keys-bin PATH        mtps-keys to make the job's keys (default: build/bin, then PATH)
# logs options: --role scheduler|server|worker, --rank N, --follow. down: --purge also
# deletes the shared claim (checkpoints). Exit codes of the pods: launch/k8s/README.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"

usage() { sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
die() { echo "k8s.sh: $*" >&2; exit 2; }

[ $# -gt 0 ] || usage 2
case "$1" in
  -h|--help) usage 0 ;;
  render|up|down|status|logs) cmd="$1"; shift ;;
  *) die "unknown command '$1' (render, up, down, status, logs; --help)" ;;
esac

JOB=mtps; IMAGE=""; WORKER_IMAGE=""; SPEC=""; SERVERS=2; WORKERS=2; DEVICE=cpu
DATA_CLAIM=mtps-data; DATA_DIR=""; SHARED_CLAIM=""; SHARED_STORAGE=50Gi
SERVER_THREADS=4; SERVER_MEMORY=16Gi; WORKER_CPUS=4; WORKER_MEMORY=16Gi
HEARTBEAT_TIMEOUT=30; RECOVER_TIMEOUT=600; MAX_RESTARTS=3; TTL_SECONDS=86400; GANG=none
KEYS_BIN=""; NAMESPACE=""; ROLE=""; RANK=""; FOLLOW=0; PURGE=0
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage 0 ;;
    --follow|-f) FOLLOW=1; shift; continue ;;
    --purge) PURGE=1; shift; continue ;;
  esac
  [ $# -ge 2 ] || die "$1 needs a value"
  case "$1" in
    --job) JOB="$2" ;;
    --image) IMAGE="$2" ;;
    --worker-image) WORKER_IMAGE="$2" ;;
    --spec|--config) SPEC="$2" ;;
    --servers) SERVERS="$2" ;;
    --workers) WORKERS="$2" ;;
    --device) DEVICE="$2" ;;
    --data-claim) DATA_CLAIM="$2" ;;
    --data-dir) DATA_DIR="$2" ;;
    --shared-claim) SHARED_CLAIM="$2" ;;
    --shared-storage) SHARED_STORAGE="$2" ;;
    --server-threads) SERVER_THREADS="$2" ;;
    --server-memory) SERVER_MEMORY="$2" ;;
    --worker-cpus) WORKER_CPUS="$2" ;;
    --worker-memory) WORKER_MEMORY="$2" ;;
    --heartbeat-timeout) HEARTBEAT_TIMEOUT="$2" ;;
    --recover-timeout) RECOVER_TIMEOUT="$2" ;;
    --max-restarts) MAX_RESTARTS="$2" ;;
    --ttl) TTL_SECONDS="$2" ;;
    --gang) GANG="$2" ;;
    --keys-bin) KEYS_BIN="$2" ;;
    --namespace|-n) NAMESPACE="$2" ;;
    --role) ROLE="$2" ;;
    --rank) RANK="$2" ;;
    *) die "unknown option $1 (--help lists them)" ;;
  esac
  shift 2
done

# A DNS label that stays one with "-scheduler-0" and "-worker-NNNN" appended (63 at most).
[[ "$JOB" =~ ^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$ ]] \
  || die "--job must be a DNS label of at most 40 characters (a-z, 0-9, '-'), got '$JOB'"
kubectl_ns=(); [ -z "$NAMESPACE" ] || kubectl_ns=(--namespace "$NAMESPACE")
need_kubectl() { command -v kubectl >/dev/null || { echo "k8s.sh: kubectl not found" >&2; exit 1; }; }
selector="mtps/job=$JOB"

case "$cmd" in
  down)
    need_kubectl
    kinds=jobs,services,configmaps,secrets
    [ "$PURGE" -eq 0 ] || kinds="$kinds,persistentvolumeclaims"
    kubectl "${kubectl_ns[@]}" delete "$kinds" -l "$selector" --ignore-not-found
    kubectl "${kubectl_ns[@]}" delete podgroups.scheduling.volcano.sh -l "$selector" \
      --ignore-not-found 2>/dev/null || true
    exit 0 ;;
  status)
    need_kubectl
    kubectl "${kubectl_ns[@]}" get jobs,pods,services,persistentvolumeclaims -l "$selector" -o wide
    exit 0 ;;
  logs)
    need_kubectl
    case "$ROLE" in ""|scheduler|server|worker) ;; *) die "--role scheduler|server|worker, got '$ROLE'" ;; esac
    [ -z "$RANK" ] || [[ "$RANK" =~ ^(0|[1-9][0-9]*)$ ]] || die "--rank must be an integer >= 0, got '$RANK'"
    [ -z "$ROLE" ] || selector="$selector,mtps/role=$ROLE"
    [ -z "$RANK" ] || selector="$selector,batch.kubernetes.io/job-completion-index=$RANK"
    follow=(); [ "$FOLLOW" -eq 0 ] || follow=(--follow --max-log-requests 64)
    kubectl "${kubectl_ns[@]}" logs -l "$selector" --prefix --tail=-1 "${follow[@]}"
    exit 0 ;;
esac

# render | up: every number is checked here, before anything is rendered.
count() {  # name value max
  [[ "$2" =~ ^[1-9][0-9]*$ ]] && [ "$2" -le "$3" ] || die "$1 must be an integer in [1, $3], got '$2'"
}
seconds() {  # name value
  [[ "$2" =~ ^[0-9]+([.][0-9]+)?$ ]] && [[ ! "$2" =~ ^0+([.]0+)?$ ]] || die "$1 must be seconds > 0, got '$2'"
}
quantity() {  # name value
  [[ "$2" =~ ^[1-9][0-9]*(Mi|Gi)$ ]] || die "$1 must be a memory quantity like 512Mi or 16Gi, got '$2'"
}
[ -n "$SPEC" ] || die "--spec FILE (the job spec) is required"
[ -f "$SPEC" ] || die "--spec: no such file '$SPEC'"
[ -n "$IMAGE" ] || die "--image is required (build launch/Dockerfile)"
count --servers "$SERVERS" 1024
count --workers "$WORKERS" 4096
count --server-threads "$SERVER_THREADS" 256
count --worker-cpus "$WORKER_CPUS" 256
quantity --server-memory "$SERVER_MEMORY"
quantity --worker-memory "$WORKER_MEMORY"
quantity --shared-storage "$SHARED_STORAGE"
seconds --heartbeat-timeout "$HEARTBEAT_TIMEOUT"
seconds --recover-timeout "$RECOVER_TIMEOUT"
[[ "$MAX_RESTARTS" =~ ^(0|[1-9][0-9]*)$ ]] && [ "$MAX_RESTARTS" -le 100 ] \
  || die "--max-restarts must be an integer in [0, 100], got '$MAX_RESTARTS'"
count --ttl "$TTL_SECONDS" 31536000
case "$DEVICE" in
  cpu) WORKER_DEVICE=cpu; WORKER_IMAGE="${WORKER_IMAGE:-$IMAGE}" ;;
  cuda|cuda:0) DEVICE=cuda; WORKER_DEVICE=cuda:0; WORKER_IMAGE="${WORKER_IMAGE:-$IMAGE-cuda}" ;;
  *) die "--device must be cpu or cuda (each worker pod gets one GPU, its cuda:0), got '$DEVICE'" ;;
esac
case "$GANG" in none|volcano) ;; *) die "--gang must be none or volcano, got '$GANG'" ;; esac
for claim in "$DATA_CLAIM" ${SHARED_CLAIM:+"$SHARED_CLAIM"}; do
  [[ "$claim" =~ ^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$ ]] || die "claim names are DNS names, got '$claim'"
done
DATA_DIR="$(cd "${DATA_DIR:-$(dirname "$SPEC")}" 2>/dev/null && pwd)" || die "--data-dir: no such directory"
SHARED_CLAIM="${SHARED_CLAIM:-$JOB-shared}"
if [ -z "$KEYS_BIN" ]; then
  KEYS_BIN="$root/build/bin/mtps-keys"
  [ -x "$KEYS_BIN" ] || KEYS_BIN="$(command -v mtps-keys || true)"
fi
[ -n "$KEYS_BIN" ] && [ -x "$KEYS_BIN" ] || die "mtps-keys not found: build it or pass --keys-bin"

mem_bytes() { local n="${1%??}"; case "$1" in *Gi) echo $((n << 30)) ;; *Mi) echo $((n << 20)) ;; esac; }
SERVER_BUDGET_BYTES=$(( $(mem_bytes "$SERVER_MEMORY") / 5 * 4 ))
SERVER_BACKOFF_LIMIT=$((MAX_RESTARTS * SERVERS))
WORKER_BACKOFF_LIMIT=$((MAX_RESTARTS * WORKERS))
GANG_SIZE=$((1 + SERVERS + WORKERS))
# The scheduler's SIGTERM checkpoint must fit in the grace period.
SCHEDULER_GRACE_SECONDS=120
export JOB IMAGE WORKER_IMAGE SPEC SERVERS WORKERS DEVICE WORKER_DEVICE DATA_CLAIM DATA_DIR \
  SHARED_CLAIM SHARED_STORAGE SERVER_THREADS SERVER_MEMORY SERVER_BUDGET_BYTES WORKER_CPUS \
  WORKER_MEMORY HEARTBEAT_TIMEOUT RECOVER_TIMEOUT MAX_RESTARTS SERVER_BACKOFF_LIMIT \
  WORKER_BACKOFF_LIMIT TTL_SECONDS GANG GANG_SIZE KEYS_BIN SCHEDULER_GRACE_SECONDS

if [ "$cmd" = render ]; then
  exec /usr/bin/python3 "$here/k8s/render.py"
fi
need_kubectl
rendered="$(/usr/bin/python3 "$here/k8s/render.py")"
printf '%s\n' "$rendered" | kubectl "${kubectl_ns[@]}" apply -f -
echo "k8s.sh: job $JOB applied. Follow it: launch/k8s.sh logs --job $JOB --follow;" \
     "state: launch/k8s.sh status --job $JOB"
