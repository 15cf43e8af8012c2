#!/usr/bin/python3
"""Draws the capacity sweep's plots from capacity.csv (matplotlib, Debian python3-matplotlib).

  plots.py OUT_DIR   ->  OUT_DIR/auc_vs_dim.png, memory_vs_rows.png, throughput_vs_dim.png,
                         auc_vs_memory.png
"""
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k, v in r.items():
            try:
                r[k] = float(v)
            except (TypeError, ValueError):
                pass
    return rows


def config(r):
    cap = "no cap" if r["cap_fraction"] >= 1 else f"cap {r['cap_fraction']:g}"
    return f"{r['optimizer']} {r['precision']} {cap}"


def series(rows, key):
    groups = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    return sorted(groups.items())


def auc_vs_dim(rows, tasks, out):
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.5), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for name, group in series(rows, config):
            group.sort(key=lambda r: r["dim"])
            ax.plot([r["dim"] for r in group], [r[f"auc_{task}"] for r in group], marker="o",
                    label=name)
        oracle = rows[0].get(f"oracle_auc_{task}")
        if isinstance(oracle, float):
            ax.axhline(oracle, color="gray", linestyle=":", label="oracle")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("embedding dim")
        ax.set_ylabel(f"AUC ({task}, eval split)")
        ax.set_title(f"{task}: AUC vs embedding dim")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def memory_vs_rows(rows, out):
    fig, ax = plt.subplots(figsize=(7, 5))
    groups = series(rows, lambda r: f"dim {int(r['dim']):>3} {r['optimizer']} {r['precision']}")
    colors = plt.get_cmap("tab20")(range(len(groups)))
    for (name, group), color in zip(groups, colors):
        group.sort(key=lambda r: r["rows_held"])
        xs = [r["rows_held"] for r in group]
        ax.plot(xs, [r["predicted_bytes"] / 2**20 for r in group], linestyle="--", color=color)
        ax.plot(xs, [r["measured_bytes"] / 2**20 for r in group], marker="o", linestyle="",
                color=color, label=name)
    ax.set_xlabel("rows held by the server (all tables)")
    ax.set_ylabel("server memory (MiB): dashed = plan, dots = measured RSS")
    ax.set_yscale("log")
    ax.set_title("Server memory vs rows")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def throughput_vs_dim(rows, out):
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, group in series(rows, lambda r: f"{r['optimizer']} {r['precision']}"):
        group = [r for r in group if r["cap_fraction"] >= 1] or group
        group.sort(key=lambda r: r["dim"])
        dims = [r["dim"] for r in group]
        line, = ax1.plot(dims, [r["pull_keys_per_sec"] / 1e6 for r in group], marker="o",
                         label=f"pull, {name}")
        ax1.plot(dims, [r["push_keys_per_sec"] / 1e6 for r in group], marker="s", linestyle="--",
                 color=line.get_color(), label=f"push, {name}")
        ax2.plot(dims, [r["samples_per_sec"] / 1e3 for r in group], marker="o", label=name)
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("embedding dim")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ax1.set_ylabel("M keys/s (one client, loopback)")
    ax1.set_title("Server pull/push throughput vs dim")
    ax2.set_ylabel("k samples/s (1 server, 1 worker)")
    ax2.set_title("Training throughput vs dim")
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def auc_vs_memory(rows, tasks, out):
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.5), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        key = f"auc_{task}"
        for name, group in series(rows, lambda r: f"{r['optimizer']} {r['precision']}"):
            ax.scatter([r["predicted_bytes"] / 2**20 for r in group], [r[key] for r in group],
                       label=name, s=18)
        # The frontier: configurations no cheaper one beats.
        best, frontier = -1.0, []
        for r in sorted(rows, key=lambda r: r["predicted_bytes"]):
            if r[key] > best:
                best = r[key]
                frontier.append(r)
        ax.step([r["predicted_bytes"] / 2**20 for r in frontier], [r[key] for r in frontier],
                where="post", color="black", label="Pareto frontier")
        for r in frontier:
            ax.annotate(f"d{int(r['dim'])}", (r["predicted_bytes"] / 2**20, r[key]), fontsize=6)
        ax.set_xscale("log")
        ax.set_xlabel("server memory budget (MiB, planned)")
        ax.set_ylabel(f"AUC ({task})")
        ax.set_title(f"{task}: best AUC for a memory budget")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main():
    out = sys.argv[1]
    rows = load(os.path.join(out, "capacity.csv"))
    tasks = [k[len("auc_"):] for k in rows[0] if k.startswith("auc_")]
    auc_vs_dim(rows, tasks, os.path.join(out, "auc_vs_dim.png"))
    memory_vs_rows(rows, os.path.join(out, "memory_vs_rows.png"))
    throughput_vs_dim(rows, os.path.join(out, "throughput_vs_dim.png"))
    auc_vs_memory(rows, tasks, os.path.join(out, "auc_vs_memory.png"))
    print("plots: " + ", ".join(f"{out}/{n}" for n in
          ["auc_vs_dim.png", "memory_vs_rows.png", "throughput_vs_dim.png", "auc_vs_memory.png"]))


if __name__ == "__main__":
    main()
