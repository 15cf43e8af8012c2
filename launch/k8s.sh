#!/usr/bin/env bash
# Renders launch/k8s/*.yaml for one job and applies them with kubectl (or prints them with
# --dry-run). Usage:
#   launch/k8s.sh --config job.yaml --image registry/mtps:TAG [--job NAME] [--servers 4]
#                 [--workers 8] [--device cuda:0] [--data-claim mtps-data] [--dry-run]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

JOB=mtps; IMAGE=""; CONFIG=""; SERVERS=2; WORKERS=2; DEVICE=cuda:0; GPUS_PER_WORKER=1
SERVER_THREADS=4; SERVER_MEMORY=16Gi; WORKER_CPUS=4; WORKER_MEMORY=16Gi
CHECKPOINT_STORAGE=50Gi; DATA_CLAIM=mtps-data; HEARTBEAT_TIMEOUT=30; DRY_RUN=0

usage() { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --job) JOB="$2"; shift 2 ;;
    --image) IMAGE="$2"; shift 2 ;;
    --config) CONFIG="$2"; shift 2 ;;
    --servers) SERVERS="$2"; shift 2 ;;
    --workers) WORKERS="$2"; shift 2 ;;
    --device) DEVICE="$2"; shift 2 ;;
    --server-threads) SERVER_THREADS="$2"; shift 2 ;;
    --server-memory) SERVER_MEMORY="$2"; shift 2 ;;
    --worker-memory) WORKER_MEMORY="$2"; shift 2 ;;
    --checkpoint-storage) CHECKPOINT_STORAGE="$2"; shift 2 ;;
    --data-claim) DATA_CLAIM="$2"; shift 2 ;;
    --heartbeat-timeout) HEARTBEAT_TIMEOUT="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "k8s.sh: unknown argument $1" >&2; usage 2 ;;
  esac
done
[ -n "$CONFIG" ] && [ -f "$CONFIG" ] || { echo "k8s.sh: --config FILE is required" >&2; exit 2; }
[ -n "$IMAGE" ] || { echo "k8s.sh: --image is required (build launch/Dockerfile)" >&2; exit 2; }
[[ "$JOB" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || { echo "k8s.sh: --job must be a DNS label" >&2; exit 2; }
case "$DEVICE" in cpu) GPUS_PER_WORKER=0 ;; cuda:*) ;; *) echo "k8s.sh: --device cpu|cuda:N" >&2; exit 2 ;; esac

JOB_SPEC_INDENTED="$(sed 's/^/    /' "$CONFIG")"
export JOB IMAGE SERVERS WORKERS DEVICE GPUS_PER_WORKER SERVER_THREADS SERVER_MEMORY WORKER_CPUS \
  WORKER_MEMORY CHECKPOINT_STORAGE DATA_CLAIM HEARTBEAT_TIMEOUT JOB_SPEC_INDENTED

# Substitutes only our ${VARS}; $(POD_NAME) is left for Kubernetes to expand.
render() {
  python3 - "$1" <<'PY'
import os, re, sys
text = open(sys.argv[1]).read()
def sub(m):
    name = m.group(1)
    if name not in os.environ:
        sys.exit(f"k8s.sh: {sys.argv[1]} uses unset variable {name}")
    return os.environ[name]
sys.stdout.write(re.sub(r"\$\{([A-Z_]+)\}", sub, text))
PY
}

rendered="$(for f in configmap scheduler servers workers; do render "$here/k8s/$f.yaml"; echo '---'; done)"
if [ "$DRY_RUN" -eq 1 ]; then
  printf '%s\n' "$rendered"
else
  command -v kubectl >/dev/null || { echo "k8s.sh: kubectl not found" >&2; exit 1; }
  printf '%s\n' "$rendered" | kubectl apply -f -
  echo "k8s.sh: job $JOB applied; follow it with: kubectl logs -f statefulset/$JOB-scheduler"
fi
