#!/usr/bin/python3
# The checkpoint pause as the workers of a real cluster see it (launch/local.sh, async): per
# checkpoint, how long training stood still (a worker's mtps_worker_checkpoint_pause_seconds,
# from its quiesce to the scheduler's release), the rows the servers held then
# (mtps_ps_table_rows), whether it was whole or incremental and the bytes it wrote (its
# MANIFEST); then ms per 1M table rows, whole and incremental, and a least-squares line
# pause = fixed + slope * rows over the whole checkpoints.
#
#   benchmarks/checkpoint_pause.py --build-dir build --full-every 5 [--rows 1000000]
#       [--users 300000] [--interval-steps 100] [--servers 1] [--workers 2] [--keep-dir DIR]
#
# Every table of the datagen job is dim 16 with Adagrad; the user table holds most rows
# (--users distinct users). Metrics are read every 20 ms over HTTP while the job runs (a
# thread per process): a pause is the change of a worker's histogram sum when its count
# grows (split evenly when one poll saw several). Checkpoint k of the run is the k-th pause;
# the end-of-job checkpoint pauses nobody.
import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVING = re.compile(r"http: serving /healthz and /metrics on ([^:\s]+):(\d+)")


def scrape(url):
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.read().decode()
    except Exception:
        return None


def metric(text, name, labels=None):
    """Sum of every series of `name` (whose labels include `labels`) in a /metrics text."""
    total, seen = 0.0, False
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        m = re.match(r"^%s(\{[^}]*\})?\s+(\S+)$" % re.escape(name), line)
        if not m or (labels and labels not in (m.group(1) or "")):
            continue
        total += float(m.group(2))
        seen = True
    return total if seen else None


def endpoint(log):
    try:
        with open(log) as f:
            m = SERVING.search(f.read())
        return "http://%s:%s/metrics" % (m.group(1), m.group(2)) if m else None
    except OSError:
        return None


def footer_rows(path):
    """Rows (an increment: records) a table file holds, from its footer: u32 "END1",
    u32 blocks, u64 rows, u32 CRC32C (ps/checkpoint.h)."""
    try:
        with open(path, "rb") as f:
            f.seek(-20, os.SEEK_END)
            footer = f.read(20)
        return struct.unpack("<4sIQI", footer)[2]
    except (OSError, struct.error):
        return 0


def read_manifest(path):
    """(base id, bytes, rows written) per file of a checkpoint (rows 0 for the dense file)."""
    files = []
    with open(path) as f:
        for line in f:
            w = line.split()
            if not w or w[0] not in ("file", "increment"):
                continue
            base = int(w[1]) if w[0] == "increment" else 0
            size = int(w[2] if base else w[1])
            name = os.path.basename(line.split(None, 5 if base else 4)[-1].strip())
            local = os.path.join(os.path.dirname(path), name)
            files.append((base, size, footer_rows(local) if ".table-" in name else 0))
    return files


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    p.add_argument("--rows", type=int, default=1000000, help="records generated")
    p.add_argument("--users", type=int, default=300000)
    p.add_argument("--items", type=int, default=3000)
    p.add_argument("--interval-steps", type=int, default=100)
    p.add_argument("--full-every", type=int, default=1)
    p.add_argument("--servers", type=int, default=1)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--keep-dir", default="", help="keep the run directory under this one")
    a = p.parse_args()

    if a.keep_dir:
        os.makedirs(a.keep_dir, exist_ok=True)
    work = tempfile.mkdtemp(dir=a.keep_dir or None, prefix="ckpt-pause.")
    try:
        data = os.path.join(work, "data")
        subprocess.run([os.path.join(a.build_dir, "bin", "mtps-datagen"), "--out", data,
                        "--rows", str(a.rows), "--users", str(a.users), "--items", str(a.items),
                        "--seed", "1", "--train_files", "4"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(os.path.join(data, "job.yaml")) as f:
            job = f.read()
        job = re.sub(r"(?ms)^checkpoint:.*", "", job)
        job = re.sub(r"(?m)^  epochs: .*$", "  epochs: %d" % a.epochs, job)
        job = re.sub(r"(?m)^  early_stopping:.*$", "", job)
        ckpt = os.path.join(work, "ckpt")
        job += "checkpoint: {dir: \"%s\", interval_steps: %d, full_every: %d, keep: 1000}\n" % (
            ckpt, a.interval_steps, a.full_every)
        config = os.path.join(work, "job.yaml")
        with open(config, "w") as f:
            f.write(job)
        run = os.path.join(work, "run")
        launcher = subprocess.Popen(
            ["bash", os.path.join(ROOT, "launch", "local.sh"), "--build-dir", a.build_dir,
             "--run-dir", run, "--config", config, "--servers", str(a.servers),
             "--workers", str(a.workers)],
            stdout=open(os.path.join(work, "local.txt"), "w"), stderr=subprocess.STDOUT)

        # One thread per endpoint, each polling every 20 ms: (time, value...) samples.
        samples = {("worker", w): [] for w in range(a.workers)}
        samples.update({("server", s): [] for s in range(a.servers)})

        def poll(role, rank):
            url = None
            while launcher.poll() is None:
                time.sleep(0.02)
                url = url or endpoint(os.path.join(run, "%s-%d.log" % (role, rank)))
                text = scrape(url) if url else None
                if not text:
                    continue
                if role == "server":
                    v = metric(text, "mtps_ps_table_rows")
                    if v is not None:
                        samples[(role, rank)].append((time.time(), v))
                else:
                    total = metric(text, "mtps_worker_checkpoint_pause_seconds_sum")
                    count = metric(text, "mtps_worker_checkpoint_pause_seconds_count")
                    if total is not None and count is not None:
                        samples[(role, rank)].append((time.time(), total, int(count)))

        threads = [threading.Thread(target=poll, args=key, daemon=True) for key in samples]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        def rows_at(when):
            """The servers' rows summed, each as last seen at or before `when`."""
            total = 0.0
            for s in range(a.servers):
                seen = [v for t, v in samples[("server", s)] if t <= when]
                if not seen:
                    return None
                total += seen[-1]
            return total

        # Per worker, each pause in order: (seconds, rows then); a poll that saw n > 1 new
        # pauses splits their sum evenly (counted in `split`).
        pauses, split = {}, 0
        for w in range(a.workers):
            pauses[w], last_total, last_count = [], 0.0, 0
            for t, total, count in samples[("worker", w)]:
                grew = count - last_count
                if grew > 0:
                    split += grew if grew > 1 else 0
                    pauses[w].extend([((total - last_total) / grew, rows_at(t))] * grew)
                last_total, last_count = total, count
        rc = launcher.wait()

        checkpoints = []
        if os.path.isdir(ckpt):
            for d in sorted(os.listdir(ckpt)):
                manifest = os.path.join(ckpt, d, "MANIFEST")
                if os.path.exists(manifest):
                    checkpoints.append(read_manifest(manifest))
        summary = {}
        try:
            with open(os.path.join(run, "summary.json")) as f:
                summary = json.load(f)
        except (OSError, ValueError):
            pass
        print("job exit %d; %d checkpoints with a manifest; pauses seen per worker: %s (%d split "
              "evenly: seen together in one poll); AUC %s" % (
            rc, len(checkpoints), {w: len(v) for w, v in pauses.items()}, split,
            " ".join("%s %.4f" % (t, v["auc"]) for t, v in summary.get("tasks", {}).items())))
        print("%-4s %-11s %12s %12s %12s %14s %s" % (
            "ckpt", "kind", "table rows", "rows written", "MB written", "pause ms",
            "ms per 1M table rows (per worker)"))
        rows_by_kind = {"whole": [], "incremental": []}
        for k, files in enumerate(checkpoints):
            # A server's table files are increments or not together (full_every counts per
            # file, all tables start together).
            kind = "incremental" if any(base for base, _, _ in files) else "whole"
            mb = sum(b for _, b, _ in files) / 1e6
            written = sum(r for _, _, r in files)
            seen = [pauses[w][k] for w in pauses if k < len(pauses[w]) and pauses[w][k][0] is not None]
            if not seen:
                print("%-4d %-11s %12s %12d %12.1f %14s" % (k + 1, kind, "-", written, mb,
                                                         "(no pause seen)"))
                continue
            rows = max(r for _, r in seen if r is not None) if any(r for _, r in seen) else None
            ms = [s * 1000 for s, _ in seen]
            per = [m / (rows / 1e6) for m in ms] if rows else []
            rows_by_kind[kind].append((rows, max(ms), mb, written))
            print("%-4d %-11s %12s %12d %12.1f %14s %s" % (
                k + 1, kind, "%d" % rows if rows else "-", written, mb, "/".join("%.0f" % m for m in ms),
                "/".join("%.0f" % x for x in per)))
        for kind, points in rows_by_kind.items():
            points = [p for p in points if p[0]]
            if not points:
                continue
            mid = lambda values: sorted(values)[len(values) // 2]
            print("%s: %d checkpoints, slowest worker's pause: median %.0f ms; per 1M table rows: "
                  "median %.0f ms (min %.0f, max %.0f); per 1M rows written: median %.0f ms; MB "
                  "written per 1M table rows: median %.1f" % (
                      kind, len(points), mid([m for _, m, _, _ in points]),
                      mid([m / (r / 1e6) for r, m, _, _ in points]),
                      min(m / (r / 1e6) for r, m, _, _ in points),
                      max(m / (r / 1e6) for r, m, _, _ in points),
                      mid([m / (w / 1e6) for _, m, _, w in points if w]) if any(w for *_, w in points) else 0,
                      mid([mb / (r / 1e6) for r, _, mb, _ in points])))
            for x_name, x_of in (("table rows", lambda p: p[0]), ("rows written", lambda p: p[3])):
                if len(points) < 3:
                    break
                n = len(points)
                xs = [x_of(p) / 1e6 for p in points]
                ys = [p[1] for p in points]
                mx, my = sum(xs) / n, sum(ys) / n
                sxx = sum((x - mx) ** 2 for x in xs)
                if sxx > 0:
                    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
                    print("  least squares over %d points (%.0f-%.0f k %s): pause = %.0f ms + %.0f ms "
                          "per 1M %s" % (n, min(xs) * 1e3, max(xs) * 1e3, x_name, my - slope * mx,
                                         slope, x_name))
        return rc
    finally:
        if not a.keep_dir:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("run directory kept: %s" % work)


if __name__ == "__main__":
    sys.exit(main())
