#!/usr/bin/env bash
# launch/k8s.sh render: every rendered object passes strict offline validation against the
# Kubernetes schema (k8s_schema.py), a broken manifest does not, the objects say what the
# issue asks (Indexed Jobs, ranks from the completion index, exit codes of exit_codes.h in
# podFailurePolicy, keys, volumes, resources = flags), and bad arguments are refused.
# Usage: k8s_render_test.sh BUILD_DIR (for mtps-keys)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
k8s() { bash "$root/launch/k8s.sh" "$@" --keys-bin "$build/bin/mtps-keys"; }

mkdir -p "$tmp/data"
cat >"$tmp/data/job.yaml" <<YAML
data: {format: mtb, train: ["$tmp/data/train-*.mtb"], eval: ["$tmp/data/eval-*.mtb"], oracle: "$tmp/data/oracle.json"}
features: {sparse: [{name: user, table: user}]}
tables: [{name: user, dim: 8}]
model: {type: mmoe}
tasks: [{name: ctr, label: click}]
checkpoint: {dir: "$tmp/ckpt", interval_steps: 100}
YAML

k8s render --spec "$tmp/data/job.yaml" --image reg/mtps:1 --job demo --servers 3 --workers 5 \
  --device cpu --worker-cpus 6 --server-threads 2 --server-memory 10Gi >"$tmp/cpu.yaml"
k8s render --spec "$tmp/data/job.yaml" --image reg/mtps:1 --job demo --servers 1 --workers 2 \
  --device cuda --gang volcano --shared-claim nfs-ckpt >"$tmp/cuda.yaml"

# 1. Strict schema validation of every rendered object.
/usr/bin/python3 "$root/tests/launch/k8s_schema.py" "$tmp/cpu.yaml" "$tmp/cuda.yaml"

# 2. Broken manifests are rejected: an unknown field, a wrong type, a missing required field.
/usr/bin/python3 - "$tmp/cpu.yaml" "$root/tests/launch" <<'PY'
import copy, sys, yaml
sys.path.insert(0, sys.argv[2])
import k8s_schema
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
job = next(d for d in docs if d["kind"] == "Job" and d["metadata"]["name"] == "demo-server")
service = next(d for d in docs if d["kind"] == "Service")
def container(j): return j["spec"]["template"]["spec"]["containers"][0]
breakages = {
    "unknown container field": (job, lambda j: container(j).update(imagePullPolicyy="Always"), "imagePullPolicyy"),
    "unknown pod field": (job, lambda j: j["spec"]["template"]["spec"].update(restartPolicyy="Never"), "restartPolicyy"),
    "completions as a string": (job, lambda j: j["spec"].update(completions="3"), "spec/completions"),
    "an argument that is a number": (job, lambda j: container(j)["args"].append(7), "args"),
    "container without a name": (job, lambda j: container(j).pop("name"), "'name' is a required property"),
    "port as a string": (service, lambda s: s["spec"]["ports"][0].update(port="7000"), "port"),
    "misspelt publishNotReadyAddresses": (service, lambda s: s["spec"].update(publishNotReadyAdresses=True), "publishNotReadyAdresses"),
}
for what, (obj, breaks, expect) in breakages.items():
    broken = copy.deepcopy(obj)
    breaks(broken)
    errors = k8s_schema.validate(broken)
    assert any(expect in e for e in errors), f"{what}: not rejected ({errors})"
assert k8s_schema.validate({"apiVersion": "v1", "kind": "Pood"}), "an unknown kind passed"
print(f"k8s_schema: {len(breakages) + 1} broken manifests rejected")
PY

# 3. What the objects must say.
/usr/bin/python3 - "$tmp" "$root/protocol/exit_codes.h" <<'PY'
import re, sys, yaml
tmp, header = sys.argv[1], open(sys.argv[2]).read()
code = {n: int(v) for n, v in re.findall(r"constexpr int (kExit\w+) = (\d+);", header)}
permanent = sorted(code[n] for n in ("kExitBadConfig", "kExitBadData", "kExitJobFailed"))

def load(name):
    docs = [d for d in yaml.safe_load_all(open(f"{tmp}/{name}.yaml")) if d]
    return docs, {(d["kind"], d["metadata"]["name"]): d for d in docs}

docs, by = load("cpu")
assert set(by) == {("ConfigMap", "demo-spec"), ("PersistentVolumeClaim", "demo-shared"),
                   ("Secret", "demo-keys-scheduler"), ("Secret", "demo-keys-server"),
                   ("Secret", "demo-keys-worker")} | {(k, f"demo-{r}") for k in ("Service", "Job")
                                                       for r in ("scheduler", "server", "worker")}, set(by)
assert not [d for d in docs if d["kind"] in ("StatefulSet", "Deployment")]
assert by[("PersistentVolumeClaim", "demo-shared")]["spec"]["accessModes"] == ["ReadWriteMany"]
counts = {"scheduler": 1, "server": 3, "worker": 5}
for role, n in counts.items():
    svc, job = by[("Service", f"demo-{role}")]["spec"], by[("Job", f"demo-{role}")]["spec"]
    assert svc["clusterIP"] == "None" and svc["publishNotReadyAddresses"] is True, role
    assert job["completionMode"] == "Indexed" and job["completions"] == n == job["parallelism"], role
    assert job["ttlSecondsAfterFinished"] > 0, role
    pod = job["template"]["spec"]
    assert pod["subdomain"] == f"demo-{role}" and pod["restartPolicy"] == "Never", role
    rules = job["podFailurePolicy"]["rules"]
    fail = [r for r in rules if r["action"] == "FailJob"]
    assert len(fail) == 1 and fail[0]["onExitCodes"]["operator"] == "In", rules
    assert sorted(fail[0]["onExitCodes"]["values"]) == permanent, (role, fail, permanent)
    assert fail[0]["onExitCodes"]["containerName"] == pod["containers"][0]["name"] == role
    assert {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]} in rules
    assert all(r["action"] in ("FailJob", "Ignore", "Count", "FailIndex") for r in rules)
    sec = pod["securityContext"]
    assert sec["runAsNonRoot"] and sec["runAsUser"] != 0, role
    c = pod["containers"][0]
    assert c["securityContext"]["allowPrivilegeEscalation"] is False, role
    ann = job["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == "8080", role
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz", role
    args = c["args"]
    assert "--keys_dir=/var/lib/mtps/keys" in args, (role, args)
    keys = next(v for v in pod["volumes"] if v["name"] == "keys")["secret"]["secretName"]
    assert keys == f"demo-keys-{role}", keys
    secret = by[("Secret", keys)]["data"]
    own = {"scheduler": ["scheduler.key"], "server": [f"server-{i}.key" for i in range(3)],
           "worker": [f"worker-{i}.key" for i in range(5)]}[role]
    assert sorted(secret) == sorted(["job.pub", "listener.key"] + own), (role, sorted(secret))
    if role != "scheduler":
        assert "--rank=$(MTPS_RANK)" in args, args
        env = {e["name"]: e for e in c["env"]}
        assert env["MTPS_RANK"]["valueFrom"]["fieldRef"]["fieldPath"] == \
            "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        assert "--scheduler=tcp://demo-scheduler-0.demo-scheduler:7000" in args, args
        assert f"--advertise_host=demo-{role}-$(MTPS_RANK).demo-{role}" in args, args
    res = c["resources"]
    assert "nvidia.com/gpu" not in res.get("limits", {}), (role, res)
# Resources follow the flags.
server = by[("Job", "demo-server")]["spec"]["template"]["spec"]["containers"][0]
assert "--threads=2" in server["args"] and server["resources"]["requests"]["cpu"] == "2"
assert server["resources"]["limits"]["memory"] == "10Gi"
assert f"--memory_budget_bytes={10 * 2**30 * 4 // 5}" in server["args"], server["args"]
assert "--restore" in server["args"] and "--checkpoint_dir=/var/lib/mtps/shared/checkpoints" in server["args"]
worker = by[("Job", "demo-worker")]["spec"]["template"]["spec"]["containers"][0]
assert "--cpu_threads=6" in worker["args"] and worker["resources"]["requests"]["cpu"] == "6"
assert "--device=cpu" in worker["args"]
# The spec carries pod paths, none of the rendering machine's.
cm = by[("ConfigMap", "demo-spec")]["data"]["job.yaml"]
assert tmp not in cm, cm
spec = yaml.safe_load(cm)
assert spec["data"]["train"] == ["/var/lib/mtps/data/train-*.mtb"], spec["data"]
assert spec["data"]["oracle"] == "/var/lib/mtps/data/oracle.json"
assert spec["checkpoint"] == {"dir": "/var/lib/mtps/shared/checkpoints", "interval_steps": 100}
sched = by[("Job", "demo-scheduler")]["spec"]["template"]["spec"]
assert "--num_servers=3" in sched["containers"][0]["args"] and "--num_workers=5" in sched["containers"][0]["args"]
mounts = {m["name"]: m["mountPath"] for m in sched["containers"][0]["volumeMounts"]}
claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in sched["volumes"]}
assert mounts["shared"] == "/var/lib/mtps/shared" and claims["shared"] == "demo-shared"

# CUDA mode: one GPU per worker, the CUDA image; the gang overlay; an existing shared claim.
docs, by = load("cuda")
assert ("PersistentVolumeClaim", "demo-shared") not in by
worker = by[("Job", "demo-worker")]["spec"]["template"]
c = worker["spec"]["containers"][0]
assert c["resources"]["limits"]["nvidia.com/gpu"] == "1" and "--device=cuda:0" in c["args"]
assert c["image"] == "reg/mtps:1-cuda"
group = by[("PodGroup", "demo")]
assert group["spec"]["minMember"] == 1 + 1 + 2
for role in ("scheduler", "server", "worker"):
    t = by[("Job", f"demo-{role}")]["spec"]["template"]
    assert t["spec"]["schedulerName"] == "volcano"
    assert t["metadata"]["annotations"]["scheduling.k8s.io/group-name"] == "demo"
    vols = {v["name"]: v for v in t["spec"]["volumes"]}
    if "shared" in vols:
        assert vols["shared"]["persistentVolumeClaim"]["claimName"] == "nfs-ckpt"
print("k8s manifests: ok")
PY

# 4. Bad arguments are refused with a message, before anything is rendered.
refuse() {  # expected-message args...
  local expect="$1"; shift
  if k8s render "$@" >"$tmp/out" 2>"$tmp/err"; then
    echo "k8s.sh accepted: $*" >&2; exit 1
  fi
  grep -q -- "$expect" "$tmp/err" || { echo "no '$expect' in: $(cat "$tmp/err")" >&2; exit 1; }
  [ ! -s "$tmp/out" ] || { echo "rendered despite: $*" >&2; exit 1; }
}
ok=(--spec "$tmp/data/job.yaml" --image x)
refuse "DNS label" "${ok[@]}" --job Bad_Name
refuse "DNS label" "${ok[@]}" --job aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
refuse "--spec" --image x
refuse "--image" --spec "$tmp/data/job.yaml"
refuse "--servers must be an integer" "${ok[@]}" --servers 0
refuse "--servers must be an integer" "${ok[@]}" --servers 2x
refuse "--workers must be an integer" "${ok[@]}" --workers -1
refuse "--worker-cpus" "${ok[@]}" --worker-cpus 1.5
refuse "--server-memory" "${ok[@]}" --server-memory 16G
refuse "--heartbeat-timeout" "${ok[@]}" --heartbeat-timeout 0
refuse "--device" "${ok[@]}" --device tpu
refuse "--gang" "${ok[@]}" --gang yunikorn
refuse "needs a value" "${ok[@]}" --servers
refuse "unknown option" "${ok[@]}" --bogus 1
mkdir -p "$tmp/elsewhere"
sed "s|$tmp/data/train|$tmp/elsewhere/train|" "$tmp/data/job.yaml" >"$tmp/data/outside.yaml"
refuse "outside --data-dir" --spec "$tmp/data/outside.yaml" --image x
if bash "$root/launch/k8s.sh" frobnicate 2>"$tmp/err"; then echo "accepted a bad command" >&2; exit 1; fi
grep -q "unknown command" "$tmp/err"
bash "$root/launch/k8s.sh" --help >"$tmp/help"
grep -q "render" "$tmp/help" && grep -q -- "--servers" "$tmp/help" && grep -q -- "--device" "$tmp/help"
echo "k8s.sh argument checks: ok"
