#!/usr/bin/python3
"""The capacity sweep: embedding dim x table capacity x optimizer x precision.

Run through benchmarks/capacity/run.sh. For every point it writes a job spec (all tables
at the point's dim, optimizer, precision and cap), then
  1. starts a standalone mtps-server and runs mtps-capacity-probe against it: every
     table's distinct keys (as counted in the training data by mtps-plan --count_keys)
     are loaded, evicting where capped; the server's RssAnon growth is the measured
     memory, the planner's ServerTableBytes the predicted one; pulls and pushes are timed;
  2. trains one epoch with launch/local.sh (1 server, 1 worker) and reads summary.json
     for samples/s and each task's AUC on the eval split.
It writes capacity.csv and report.md, then plots.py draws the PNGs.
"""
import argparse
import csv
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import yaml

QUICK = dict(rows=100000, users=300000, items=150000, shops=5000,
             dims=[4, 16, 64], caps=[1.0, 0.25], optimizers=["adagrad", "adam"],
             precisions=["fp32", "bf16"])
FULL = dict(rows=400000, users=1000000, items=500000, shops=20000,
            dims=[4, 8, 16, 32, 64, 128], caps=[1.0, 0.5, 0.25, 0.1],
            optimizers=["adagrad", "adam"], precisions=["fp32", "fp16", "bf16"])
LR = {"adagrad": 0.2, "adam": 0.01}
THREADS = 2  # server shard threads: the planner is told the same


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def progress(done, total, started, label):
    width = 30
    filled = int(width * done / total)
    elapsed = time.time() - started
    eta = elapsed / done * (total - done) if done else 0
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
                     f"{elapsed:5.0f}s elapsed, ~{eta:4.0f}s left  {label:<40}")
    sys.stderr.flush()


def wait_port_file(path, proc, limit=20):
    deadline = time.time() + limit
    while time.time() < deadline:
        if os.path.exists(path):
            text = open(path).read().split()
            if len(text) == 2:
                return int(text[0])
        if proc.poll() is not None:
            raise RuntimeError(f"mtps-server exited with {proc.returncode}")
        time.sleep(0.05)
    raise RuntimeError("mtps-server did not start serving")


def probe(bin_dir, job_path, keys, point_dir):
    ports = os.path.join(point_dir, "ports")
    log = open(os.path.join(point_dir, "probe-server.log"), "w")
    server = subprocess.Popen([f"{bin_dir}/mtps-server", "--standalone", f"--config={job_path}",
                               f"--threads={THREADS}", "--port=0", "--http_port=0",
                               "--host=127.0.0.1", f"--port_file={ports}", "--insecure"],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        port = wait_port_file(ports, server)
        keys_flag = ",".join(f"{t}={n}" for t, n in keys.items())
        out = run([f"{bin_dir}/mtps-capacity-probe", f"--config={job_path}",
                   f"--server=tcp://127.0.0.1:{port}", f"--server_pid={server.pid}",
                   f"--shards={THREADS}", f"--keys={keys_flag}", "--timed_keys=100000"])
        return json.loads(out.stdout)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def train(root, build_dir, job_path, point_dir):
    run_dir = os.path.join(point_dir, "run")
    run(["bash", f"{root}/launch/local.sh", "--config", job_path, "--servers", "1",
         "--workers", "1", "--run-dir", run_dir, "--build-dir", build_dir])
    return json.load(open(os.path.join(run_dir, "summary.json")))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", required=True)
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--root", required=True)
    args = parser.parse_args()
    grid = QUICK if args.quick else FULL
    bin_dir = os.path.join(args.build_dir, "bin")
    os.makedirs(args.out, exist_ok=True)

    data = os.path.join(args.out, "data")
    if not os.path.exists(os.path.join(data, "job.yaml")):
        run([f"{bin_dir}/mtps-datagen", "--out", data, "--rows", str(grid["rows"]),
             "--users", str(grid["users"]), "--items", str(grid["items"]),
             "--shops", str(grid["shops"]), "--seed", "7"])
    base = yaml.safe_load(open(os.path.join(data, "job.yaml")))
    base["training"]["epochs"] = 1
    counted = json.loads(run([f"{bin_dir}/mtps-plan", f"--config={data}/job.yaml",
                              "--count_keys", "--json"]).stdout)
    distinct = {t["name"]: t["distinct_keys"] for t in counted["tables"]}
    tasks = [t["name"] for t in base["tasks"]]

    points = [(d, c, o, p) for o in grid["optimizers"] for p in grid["precisions"]
              for c in grid["caps"] for d in grid["dims"]]
    rows = []
    started = time.time()
    for i, (dim, cap, opt, prec) in enumerate(points):
        label = f"dim {dim} cap {cap:g} {opt} {prec}"
        progress(i, len(points), started, label)
        point_dir = os.path.join(args.out, "points", f"d{dim}-c{cap:g}-{opt}-{prec}")
        shutil.rmtree(point_dir, ignore_errors=True)
        os.makedirs(point_dir)
        job = json.loads(json.dumps(base))
        rows_cap = 0
        rows_held = 0
        for t in job["tables"]:
            t["dim"] = dim
            t["optimizer"] = {"type": opt, "lr": LR[opt]}
            t["precision"] = prec
            if cap < 1.0:
                t["capacity_rows"] = max(1, math.ceil(cap * distinct[t["name"]]))
                rows_cap += t["capacity_rows"]
            rows_held += min(distinct[t["name"]], t.get("capacity_rows", distinct[t["name"]]))
        job_path = os.path.join(point_dir, "job.yaml")
        with open(job_path, "w") as f:
            yaml.safe_dump(job, f, sort_keys=False)
        measured = probe(bin_dir, job_path, distinct, point_dir)
        summary = train(args.root, args.build_dir, job_path, point_dir)
        pulls = [t["pull_keys_per_sec"] for t in measured["tables"]]
        pushes = [t["push_keys_per_sec"] for t in measured["tables"]]
        row = {"dim": dim, "rows_cap": rows_cap, "cap_fraction": cap, "optimizer": opt,
               "precision": prec, "distinct_keys": sum(distinct.values()), "rows_held": rows_held,
               "predicted_bytes": int(measured["predicted_bytes"]),
               "measured_bytes": int(measured["measured_bytes"]),
               "prediction_error": measured["measured_bytes"] / measured["predicted_bytes"] - 1,
               # Harmonic mean over tables: the rate of the same number of keys per table.
               "pull_keys_per_sec": round(len(pulls) / sum(1 / p for p in pulls)),
               "push_keys_per_sec": round(len(pushes) / sum(1 / p for p in pushes)),
               "samples_per_sec": round(summary["samples_per_sec"])}
        for task in tasks:
            row[f"auc_{task}"] = round(summary["tasks"][task]["auc"], 5)
            oracle = summary["tasks"][task].get("oracle_auc")
            row[f"oracle_auc_{task}"] = round(oracle, 5) if oracle is not None else ""
        rows.append(row)
        with open(os.path.join(args.out, "capacity.csv"), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            writer.writeheader()
            writer.writerows(rows)
    progress(len(points), len(points), started, "done")
    sys.stderr.write("\n")
    write_report(args, grid, rows, tasks, distinct, time.time() - started)


def write_report(args, grid, rows, tasks, distinct, seconds):
    worst = max(rows, key=lambda r: abs(r["prediction_error"]))
    lines = [
        "# Capacity sweep", "",
        f"Command: `benchmarks/capacity/run.sh{' --quick' if args.quick else ''} --out {args.out}`"
        f" ({len(rows)} points, {seconds:.0f} s).", "",
        f"Data: mtps-datagen, {grid['rows']} records (90% train), distinct training keys per "
        "table (HyperLogLog, mtps-plan --count_keys): " +
        ", ".join(f"{t} {n}" for t, n in distinct.items()) + ".", "",
        "Memory: a standalone mtps-server (--threads 2) loads every table's distinct keys "
        "(a capped table evicts down to its cap); measured = growth of its RssAnon, predicted = "
        "the planner (ps/memory_plan.h) for the same rows. Pull/push keys/s: 4096-key requests "
        "over loopback, one client, harmonic mean over tables. Training: one epoch, 1 server, "
        "1 worker (launch/local.sh); AUC on the eval split.", "",
        f"Largest prediction error: {100 * worst['prediction_error']:+.2f}% at dim {worst['dim']}, "
        f"cap {worst['cap_fraction']:g}, {worst['optimizer']}, {worst['precision']}.", "",
    ]
    cols = ["dim", "cap_fraction", "rows_cap", "optimizer", "precision", "predicted_bytes",
            "measured_bytes", "prediction_error", "pull_keys_per_sec", "push_keys_per_sec",
            "samples_per_sec"] + [f"auc_{t}" for t in tasks]
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "---|" * len(cols))
    for r in rows:
        cells = []
        for c in cols:
            v = r[c]
            if c == "prediction_error":
                v = f"{100 * v:+.2f}%"
            elif c.endswith("_bytes"):
                v = f"{v / 2**20:.1f} MiB"
            cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Plots (plots.py): `auc_vs_dim.png` (AUC vs dim per task), `memory_vs_rows.png` "
              "(predicted and measured server memory vs rows held), `throughput_vs_dim.png` "
              "(pull/push keys/s and training samples/s vs dim), `auc_vs_memory.png` (AUC vs "
              "server memory, the Pareto frontier of the sweep's configurations).", ""]
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
