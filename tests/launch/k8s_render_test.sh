#!/usr/bin/env bash
# launch/k8s.sh renders valid manifests: every document parses, the expected objects are
# there with the job's name and counts, and bad arguments are refused.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/job.yaml" <<'YAML'
features: {sparse: [{name: user, table: user}]}
tables: [{name: user, dim: 8}]
model: {type: mmoe}
tasks: [{name: ctr, label: click}]
YAML

bash "$root/launch/k8s.sh" --config "$tmp/job.yaml" --image reg/mtps:1 --job demo \
  --servers 3 --workers 5 --device cuda:0 --dry-run >"$tmp/out.yaml"
/usr/bin/python3 - "$tmp/out.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
expected = {("ConfigMap", "demo-spec"), ("Service", "demo-scheduler"), ("StatefulSet", "demo-scheduler"),
            ("Service", "demo-server"), ("StatefulSet", "demo-server"), ("Job", "demo-worker")}
assert kinds == expected, kinds
by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
assert by[("StatefulSet", "demo-server")]["spec"]["replicas"] == 3
job = by[("Job", "demo-worker")]["spec"]
assert job["completions"] == 5 and job["completionMode"] == "Indexed"
worker = job["template"]["spec"]["containers"][0]
assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
assert worker["livenessProbe"]["httpGet"]["path"] == "/healthz"
spec = yaml.safe_load(by[("ConfigMap", "demo-spec")]["data"]["job.yaml"])
assert spec["tables"][0]["dim"] == 8
server_args = " ".join(by[("StatefulSet", "demo-server")]["spec"]["template"]["spec"]["containers"][0]["args"])
assert "--scheduler=tcp://demo-scheduler-0.demo-scheduler:7000" in server_args, server_args
print("k8s manifests: ok")
PY

# Bad arguments are refused with a message, not rendered.
if bash "$root/launch/k8s.sh" --config "$tmp/job.yaml" --image x --job Bad_Name --dry-run 2>"$tmp/err"; then
  echo "accepted a job name that is not a DNS label" >&2; exit 1
fi
grep -q "DNS label" "$tmp/err"
if bash "$root/launch/k8s.sh" --image x --dry-run 2>"$tmp/err"; then
  echo "accepted a missing --config" >&2; exit 1
fi
grep -q -- "--config" "$tmp/err"
echo "k8s.sh argument checks: ok"
