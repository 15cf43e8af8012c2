#!/usr/bin/python3
# Renders launch/k8s/*.yaml for one job (called by launch/k8s.sh, which checks the flags and
# exports them): ${VARS} substituted, the spec's paths moved onto the pods' volumes, CURVE key
# Secrets made with mtps-keys, CPU mode and the gang overlay applied. Prints one YAML stream.
import base64
import glob
import os
import re
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
POD_ROOT = "/var/lib/mtps"  # every volume of every pod is mounted under it (README.md)


def fail(message):
    sys.exit(f"k8s.sh: {message}")


def substitute(path, env):
    """${NAME} from env; $(NAME) is left for Kubernetes to expand from the pod's env."""
    def value(match):
        name = match.group(1)
        if name not in env:
            fail(f"{os.path.basename(path)} uses unset variable {name}")
        return env[name]
    return re.sub(r"\$\{([A-Z_]+)\}", value, open(path).read())


def pod_path(path, field, data_dir):
    """A data path of the spec as a pod sees it: under the data volume, relative to --data-dir."""
    rel = os.path.relpath(path, data_dir) if os.path.isabs(path) else os.path.normpath(path)
    if rel == ".." or rel.startswith("../") or os.path.isabs(rel):
        fail(f"{field}: {path} is outside --data-dir {data_dir}; the data volume holds "
             f"--data-dir, so every data path must lie under it")
    return f"{POD_ROOT}/data/{rel}"


def pod_spec(spec_path, data_dir):
    """The job spec with paths that work inside the pods and none of the rendering machine's."""
    try:
        spec = yaml.safe_load(open(spec_path))
    except yaml.YAMLError as e:
        fail(f"--spec {spec_path} is not YAML: {e}")
    if not isinstance(spec, dict):
        fail(f"--spec {spec_path}: not a job spec (a YAML map)")
    data = spec.get("data") or {}
    for key in ("train", "eval"):
        value = data.get(key)
        if isinstance(value, str):
            data[key] = pod_path(value, f"data.{key}", data_dir)
        elif isinstance(value, list):
            data[key] = [pod_path(v, f"data.{key}[{i}]", data_dir) for i, v in enumerate(value)]
    if data.get("oracle"):
        data["oracle"] = pod_path(data["oracle"], "data.oracle", data_dir)
    # Servers write their files and the scheduler the manifest into one tree: the shared volume.
    checkpoint = spec.get("checkpoint") or {}
    checkpoint["dir"] = f"{POD_ROOT}/shared/checkpoints"
    spec["checkpoint"] = checkpoint
    header = (f"# Job spec rendered by launch/k8s.sh from {os.path.basename(spec_path)}: data paths "
              f"on the data volume, checkpoints on the shared volume.\n")
    return header + yaml.safe_dump(spec, sort_keys=False)


def key_secrets(env):
    """One Secret per role: the allow-list, the listener key and that role's own keys only."""
    job, servers, workers = env["JOB"], int(env["SERVERS"]), int(env["WORKERS"])
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "keys")
        run = subprocess.run([env["KEYS_BIN"], "--out", out, "--servers", str(servers),
                              "--workers", str(workers)], capture_output=True, text=True)
        if run.returncode != 0:
            fail(f"mtps-keys failed: {run.stderr.strip() or run.stdout.strip()}")
        files = {os.path.basename(p): open(p, "rb").read() for p in glob.glob(out + "/*")}
    shared = ("job.pub", "listener.key")
    own = {"scheduler": ["scheduler.key"],
           "server": [f"server-{i}.key" for i in range(servers)],
           "worker": [f"worker-{i}.key" for i in range(workers)]}
    secrets = []
    for role, names in own.items():
        missing = [n for n in (*shared, *names) if n not in files]
        if missing:
            fail(f"mtps-keys wrote no {', '.join(missing)}")
        secrets.append({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": f"{job}-keys-{role}",
                         "labels": {"app.kubernetes.io/name": "mtps", "app.kubernetes.io/instance": job,
                                    "mtps/job": job, "mtps/role": role}},
            "data": {n: base64.b64encode(files[n]).decode() for n in (*shared, *names)},
        })
    return secrets


class Dumper(yaml.SafeDumper):
    """Multi-line strings (the ConfigMap's job spec) as readable literal blocks."""


Dumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


def main():
    env = dict(os.environ)
    env["JOB_SPEC_INDENTED"] = "\n".join(
        "    " + line for line in pod_spec(env["SPEC"], env["DATA_DIR"]).splitlines())
    docs = []
    for name in ("configmap", "storage", "scheduler", "servers", "workers"):
        if name == "storage" and env["SHARED_CLAIM"] != f"{env['JOB']}-shared":
            continue  # an existing claim was named
        docs += [d for d in yaml.safe_load_all(substitute(f"{HERE}/{name}.yaml", env)) if d]
    docs[1:1] = key_secrets(env)

    jobs = [d for d in docs if d["kind"] == "Job"]
    for job in jobs:
        pod = job["spec"]["template"]
        for container in pod["spec"]["containers"]:
            limits = container["resources"]["limits"]
            if env["DEVICE"] == "cpu":
                limits.pop("nvidia.com/gpu", None)
        if env["GANG"] == "volcano":
            pod["spec"]["schedulerName"] = "volcano"
            pod["metadata"]["annotations"]["scheduling.k8s.io/group-name"] = env["JOB"]
    if env["GANG"] == "volcano":
        docs[:0] = [d for d in yaml.safe_load_all(substitute(f"{HERE}/gang-volcano.yaml", env)) if d]
    sys.stdout.write(yaml.dump_all(docs, Dumper=Dumper, sort_keys=False))


if __name__ == "__main__":
    main()
