#!/usr/bin/python3
# A simulated multi-host Kubernetes cluster for launch/k8s.sh's manifests: every pod of the
# rendered Jobs runs the exact command and args of its container (env and $(VAR) expanded as
# the kubelet does) in its own network namespace, wired by veth pairs to a bridge in a switch
# namespace; names resolve as cluster DNS would (/etc/netns/NS/hosts); volumes are bind
# mounts in the pod's own mount namespace; the process runs as the pod's runAsUser. A small
# Job controller replaces pods the way podFailurePolicy and backoffLimit say.
#
# 1. The job completes: every pod of every Job exits 0, summary.json is on the shared volume.
# 2. Again, and once a checkpoint is committed a server's link is cut past the heartbeat
#    timeout and restored: the server is lost, fenced, replaced under its index, restores,
#    and the job still completes.
#
# Usage: k8s_netns_test.py BUILD_DIR. Exit 77 (skipped, with the reason) where network
# namespaces cannot be made (not root, no `ip netns`). Everything it makes it removes.
import base64
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"))
BIN = os.path.join(BUILD, "bin")
POD_BIN = "/var/lib/mtps-bin"  # where a pod finds the binaries
TAG = f"mk{os.getpid() % 100000}"  # prefix of every namespace and link this run makes
SUBNET = "10.231.0"
DEADLINE_S = 150  # per phase; the phases take ~10-25 s on an idle 2-core machine


def log(message):
    print(f"k8s_netns_test: {message}", flush=True)


def run(*cmd, check=True):
    result = subprocess.run(cmd, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {result.returncode}: {result.stderr.strip()}")
    return result


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(77)


class Network:
    """A switch namespace with a bridge, and one namespace per pod on it."""

    def __init__(self):
        self.made_etc_netns = not os.path.isdir("/etc/netns")  # removed again if we made it
        self.switch = f"{TAG}-sw"
        self.pods = {}  # pod hostname -> (namespace, ip, switch-side link)
        run("ip", "netns", "add", self.switch)
        run("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", self.switch, "link", "set", "br0", "up")
        run("ip", "-n", self.switch, "link", "set", "lo", "up")

    def add_pod(self, hostname):
        k = len(self.pods)
        ns, ip, link = f"{TAG}-p{k}", f"{SUBNET}.{10 + k}", f"{TAG}s{k}"[-15:]
        run("ip", "netns", "add", ns)
        run("ip", "link", "add", f"{TAG}c{k}"[-15:], "netns", ns, "type", "veth",
            "peer", "name", link, "netns", self.switch)
        run("ip", "-n", ns, "link", "set", f"{TAG}c{k}"[-15:], "name", "eth0")
        run("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        for dev in ("eth0", "lo"):
            run("ip", "-n", ns, "link", "set", dev, "up")
        run("ip", "-n", self.switch, "link", "set", link, "master", "br0")
        run("ip", "-n", self.switch, "link", "set", link, "up")
        self.pods[hostname] = (ns, ip, link)

    def write_hosts(self, subdomains):
        """Each pod resolves every pod as <hostname>.<subdomain>[.default.svc.cluster.local]."""
        lines = ["127.0.0.1 localhost"]
        for hostname, (_, ip, _) in self.pods.items():
            sub = subdomains[hostname]
            lines.append(f"{ip} {hostname}.{sub} {hostname}.{sub}.default.svc.cluster.local {hostname}")
        for ns, _, _ in self.pods.values():
            os.makedirs(f"/etc/netns/{ns}", exist_ok=True)
            with open(f"/etc/netns/{ns}/hosts", "w") as f:
                f.write("\n".join(lines) + "\n")

    def set_link(self, hostname, up):
        run("ip", "-n", self.switch, "link", "set", self.pods[hostname][2], "up" if up else "down")

    def remove(self):
        for ns in [p[0] for p in self.pods.values()] + [self.switch]:
            for pid in run("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            run("ip", "netns", "del", ns, check=False)
            shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)
        if self.made_etc_netns:
            try:
                os.rmdir("/etc/netns")
            except OSError:
                pass  # another user's namespaces live there too


class Pod:
    """One pod of an Indexed Job: its container's process in the pod's namespaces."""

    def __init__(self, cluster, job, index):
        self.cluster, self.job, self.index = cluster, job, index
        self.role = job["metadata"]["labels"]["mtps/role"]
        self.hostname = f"{job['metadata']['name']}-{index}"  # what an Indexed Job sets
        self.attempts, self.process, self.exit_codes = 0, None, []

    def start(self):
        c = self.cluster
        spec = self.job["spec"]["template"]["spec"]
        container = spec["containers"][0]
        ns, ip, _ = c.net.pods[self.hostname]
        self.attempts += 1
        name = f"{self.hostname}-{self.attempts}"  # a new pod name per attempt, as the controller does
        env = {"JOB_COMPLETION_INDEX": str(self.index)}
        fields = {"metadata.name": name, "status.podIP": ip,
                  "metadata.annotations['batch.kubernetes.io/job-completion-index']": str(self.index)}
        for e in container.get("env", []):
            if "value" in e:
                env[e["name"]] = expand(e["value"], env)
            else:
                env[e["name"]] = fields[e["valueFrom"]["fieldRef"]["fieldPath"]]
        argv = [expand(a, env) for a in container["command"] + container.get("args", [])]
        # The pod's file system: every volume mounted where the manifest says.
        root = os.path.join(c.tmp, "pods", name)
        mounts = []
        volumes = {v["name"]: v for v in spec["volumes"]}
        for m in container["volumeMounts"]:
            source = c.volume_dir(volumes[m["name"]], root)
            path = m["mountPath"]
            if path.startswith("/var/lib/"):
                os.makedirs(os.path.join(root, "varlib", path[len("/var/lib/"):]), exist_ok=True)
            elif not os.path.isdir(path):
                raise RuntimeError(f"cannot emulate mountPath {path}")
            mounts.append((source, path, m.get("readOnly", False)))
        os.makedirs(os.path.join(root, "varlib"), exist_ok=True)
        # The binaries stand where the image puts them, bound before the pod's own mounts:
        # an emptyDir over /tmp would hide a build directory that lies under /tmp.
        os.makedirs(os.path.join(root, "varlib", "mtps-bin"), exist_ok=True)
        script = [f"mount --bind {q(os.path.join(root, 'varlib'))} /var/lib",
                  f"mount --bind -o ro {q(BIN)} {POD_BIN}"]
        for source, path, ro in mounts:
            script.append(f"mount --bind {'-o ro ' if ro else ''}{q(source)} {q(path)}")
        sec = spec["securityContext"]
        user, group = sec["runAsUser"], sec.get("runAsGroup", sec["runAsUser"])
        groups = ",".join(str(g) for g in {group, sec.get("fsGroup", group)})
        env_args = " ".join(q(f"{k}={v}") for k, v in env.items())
        script.append(f"exec setpriv --reuid={user} --regid={group} --groups={groups} -- "
                      f"env -i PATH={POD_BIN}:/usr/bin:/bin HOSTNAME={self.hostname} {env_args} "
                      + " ".join(q(a) for a in argv))
        self.log_path = os.path.join(c.tmp, "logs", f"{name}.log")
        out = open(self.log_path, "w")
        self.process = subprocess.Popen(["ip", "netns", "exec", ns, "sh", "-c", " && ".join(script)],
                                        stdout=out, stderr=subprocess.STDOUT)
        out.close()

    def poll(self):
        if self.process is None or self.process.poll() is None:
            return None
        code = self.process.returncode
        self.exit_codes.append(code)
        self.process = None
        return code

    def log(self):
        return "".join(open(p).read() for p in sorted(glob.glob(
            os.path.join(self.cluster.tmp, "logs", f"{self.hostname}-*.log"))))


def expand(text, env):
    """The kubelet's $(VAR) expansion of command, args and env values."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), text)


def q(text):
    return "'" + str(text).replace("'", "'\\''") + "'"


class Cluster:
    """The rendered objects, run: a network, volumes, and a Job controller."""

    def __init__(self, rendered, data_dir, tmp):
        self.tmp = tmp
        self.docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
        self.by_name = {(d["kind"], d["metadata"]["name"]): d for d in self.docs}
        self.data_dir = data_dir
        self.net = Network()
        self.jobs = [d for d in self.docs if d["kind"] == "Job"]
        self.pods = []
        for job in self.jobs:
            for i in range(job["spec"]["completions"]):
                self.pods.append(Pod(self, job, i))
        for pod in self.pods:
            self.net.add_pod(pod.hostname)
        self.net.write_hosts({p.hostname: p.job["spec"]["template"]["spec"]["subdomain"] for p in self.pods})
        self.failures = {j["metadata"]["name"]: 0 for j in self.jobs}

    def volume_dir(self, volume, pod_root):
        """A directory with the volume's content, as the kubelet would present it."""
        user = 10001
        if "configMap" in volume or "secret" in volume:
            source = volume.get("configMap") or volume.get("secret")
            obj = self.by_name[("ConfigMap", source["name"])] if "configMap" in volume else \
                self.by_name[("Secret", source["secretName"])]
            path = os.path.join(pod_root, "volumes", volume["name"])
            os.makedirs(path, exist_ok=True)
            for key, value in obj["data"].items():
                content = base64.b64decode(value) if "secret" in volume else value.encode()
                with open(os.path.join(path, key), "wb") as f:
                    f.write(content)
                # fsGroup: files owned by root, group fsGroup, with defaultMode (group-readable).
                os.chown(os.path.join(path, key), 0, user)
                os.chmod(os.path.join(path, key), source.get("defaultMode", 0o644))
            return path
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            if claim == "mtps-data":
                return self.data_dir
            path = os.path.join(self.tmp, "claims", claim)
            if not os.path.isdir(path):
                os.makedirs(path)
                os.chown(path, 0, user)
                os.chmod(path, 0o2775)  # fsGroup: group-owned and group-writable
            return path
        if "emptyDir" in volume:
            path = os.path.join(pod_root, "volumes", volume["name"])
            os.makedirs(path, exist_ok=True)
            os.chmod(path, 0o1777)
            return path
        raise RuntimeError(f"cannot emulate volume {volume}")

    def permanent_codes(self, job):
        codes = set()
        for rule in job["spec"].get("podFailurePolicy", {}).get("rules", []):
            if rule["action"] == "FailJob" and "onExitCodes" in rule:
                assert rule["onExitCodes"]["operator"] == "In"
                codes |= set(rule["onExitCodes"]["values"])
        return codes

    def run_until_done(self, deadline, on_tick=None):
        """The Job controller: replaces failed pods until every index succeeded, or fails."""
        for pod in self.pods:
            pod.start()
        while time.monotonic() < deadline:
            if on_tick:
                on_tick()
            running = 0
            for pod in self.pods:
                if pod.process is None and pod.exit_codes and pod.exit_codes[-1] == 0:
                    continue  # this index completed
                code = pod.poll()
                if code is None:
                    running += pod.process is not None
                    continue
                job = pod.job
                name = job["metadata"]["name"]
                log(f"{pod.hostname} (attempt {pod.attempts}) exited {code}")
                if code == 0:
                    continue
                if code in self.permanent_codes(job):
                    raise AssertionError(f"{pod.hostname} exited {code}: permanent, Job {name} "
                                         f"failed\n{pod.log()[-3000:]}")
                self.failures[name] += 1
                if self.failures[name] > job["spec"]["backoffLimit"]:
                    raise AssertionError(f"Job {name} passed its backoffLimit\n{pod.log()[-3000:]}")
                pod.start()
                running += 1
            if running == 0:
                return
            time.sleep(0.1)  # polling interval of the controller loop, not a wait for an event
        raise AssertionError("the job did not complete in time; scheduler log:\n" +
                             self.pod("scheduler", 0).log()[-4000:])

    def pod(self, role, index):
        return next(p for p in self.pods if p.role == role and p.index == index)

    def stop(self):
        for pod in self.pods:
            if pod.process is not None:
                pod.process.kill()
                pod.process.wait()
        self.net.remove()


def render(tmp, spec_path, data_dir, name):
    out = os.path.join(tmp, f"{name}.yaml")
    with open(out, "w") as f:
        subprocess.run(["bash", os.path.join(ROOT, "launch/k8s.sh"), "render", "--spec", spec_path,
                        "--data-dir", data_dir, "--image", "mtps:test", "--job", name,
                        "--servers", "2", "--workers", "2", "--device", "cpu", "--worker-cpus", "1",
                        "--server-threads", "2", "--server-memory", "1Gi",
                        "--heartbeat-timeout", "2", "--recover-timeout", "60",
                        "--keys-bin", os.path.join(BIN, "mtps-keys")], stdout=f, check=True)
    return out


def write_spec(data_dir, path, epochs, interval_steps):
    spec = yaml.safe_load(open(os.path.join(data_dir, "job.yaml")))
    spec["training"]["epochs"] = epochs
    spec["checkpoint"] = {"interval_steps": interval_steps}
    with open(path, "w") as f:
        yaml.safe_dump(spec, f)


def phase(tmp, data_dir, name, epochs, interval_steps, cut_link):
    spec_path = os.path.join(data_dir, f"{name}.yaml")
    write_spec(data_dir, spec_path, epochs, interval_steps)
    cluster = Cluster(render(tmp, spec_path, data_dir, name), data_dir, tmp)
    started = time.monotonic()
    state = {"cut": None, "restored": False}
    shared = os.path.join(tmp, "claims", f"{name}-shared")
    scheduler = cluster.pod("scheduler", 0)

    def chaos():
        if not cut_link or state["restored"]:
            return
        if state["cut"] is None:
            if glob.glob(os.path.join(shared, "checkpoints", "*", "MANIFEST")):
                log("a checkpoint is committed: cutting server 1's link")
                cluster.net.set_link(f"{name}-server-1", up=False)
                state["cut"] = time.monotonic()
        elif re.search(r"server 1\b[^\n]*is lost", scheduler.log()):
            log(f"the scheduler lost server 1 after {time.monotonic() - state['cut']:.1f} s: "
                "restoring the link")
            cluster.net.set_link(f"{name}-server-1", up=True)
            state["restored"] = True

    try:
        cluster.run_until_done(started + DEADLINE_S, chaos)
        elapsed = time.monotonic() - started
        for pod in cluster.pods:
            assert pod.exit_codes[-1] == 0, (pod.hostname, pod.exit_codes)
        summary = os.path.join(shared, "run", "summary.json")
        assert os.path.exists(summary), "no summary.json on the shared volume"
        if cut_link:
            assert state["restored"], "the link was never cut and restored"
            server = cluster.pod("server", 1)
            assert len(server.exit_codes) >= 2 and server.exit_codes[0] != 0, \
                f"server 1 was not replaced: exits {server.exit_codes}"
            # Fenced when its heartbeats come back (or, on a slow machine, it gave up on the
            # scheduler first): either way a retryable exit, so the index is replaced.
            assert server.exit_codes[0] in (1, 143), server.exit_codes
            assert re.search(r"fenced|lost the scheduler", server.log()), server.log()[-2000:]
            replacement = open(server.log_path).read()  # the last attempt's log
            assert re.search(r"restor", replacement, re.I) and "no whole checkpoint" not in replacement, \
                f"the replacement did not restore a checkpoint:\n{replacement[-2000:]}"
        log(f"{name}: the job completed in {elapsed:.1f} s; exits " +
            ", ".join(f"{p.hostname} {p.exit_codes}" for p in cluster.pods))
    finally:
        cluster.stop()


def main():
    if os.geteuid() != 0:
        skip("needs root to create network namespaces (ip netns)")
    if shutil.which("ip") is None or shutil.which("setpriv") is None:
        skip("needs ip (iproute2) and setpriv (util-linux)")
    probe = f"{TAG}-probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        skip(f"cannot create a network namespace: {made.stderr.strip()}")
    run("ip", "netns", "del", probe)
    for binary in ("mtps-scheduler", "mtps-server", "mtps-worker", "mtps-keys", "mtps-datagen"):
        if not os.access(os.path.join(BIN, binary), os.X_OK):
            raise SystemExit(f"k8s_netns_test: {BIN}/{binary} is not built")

    tmp = tempfile.mkdtemp(prefix="mtps-k8s-netns-")
    os.chmod(tmp, 0o755)
    for d in ("logs", "pods", "claims"):
        os.makedirs(os.path.join(tmp, d))
    try:
        data_dir = os.path.join(tmp, "data")
        run(os.path.join(BIN, "mtps-datagen"), "--out", data_dir, "--rows", "12000", "--seed", "7")
        for path in glob.glob(data_dir + "/*"):
            os.chmod(path, 0o644)
        os.chmod(data_dir, 0o755)
        phase(tmp, data_dir, "sim", epochs=1, interval_steps=0, cut_link=False)
        phase(tmp, data_dir, "cut", epochs=4, interval_steps=4, cut_link=True)
        print("k8s_netns_test: 2 passed, 0 failed")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        leftover = [n for n in run("ip", "netns", "list").stdout.split() if n.startswith(TAG)]
        assert not leftover, f"namespaces left behind: {leftover}"


if __name__ == "__main__":
    main()
