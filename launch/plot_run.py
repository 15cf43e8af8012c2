#!/usr/bin/python3
# Draws a run's per-task evaluation AUC and loss by epoch from its summary.json "history"
# (scheduler/run_summary.h) into a PNG, with Debian's python3-matplotlib.
#
# Usage: launch/plot_run.py RUN/summary.json [-o RUN/auc_loss_by_epoch.png]
# One row per task: AUC after each epoch (the data set's oracle AUC dashed, when known),
# and the epoch's mean training loss beside the evaluation's logloss. The best epoch, when
# the run kept one, is marked. Exit 0: written; 1: the summary has no history to draw;
# 2: bad arguments, or a file that cannot be read or written.
import argparse
import json
import math
import os
import sys


def fail(code, message):
    print(f"plot_run.py: {message}", file=sys.stderr)
    sys.exit(code)


def number(value):
    """A JSON number, or NaN for null (not measured) and anything else."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def load(path):
    try:
        with open(path) as f:
            summary = json.load(f)
    except OSError as e:
        fail(2, f"cannot read {path}: {e.strerror}")
    except json.JSONDecodeError as e:
        fail(2, f"{path} is not JSON: {e}")
    if not isinstance(summary, dict):
        fail(2, f"{path} is not a run summary (a JSON object)")
    history = summary.get("history")
    if not isinstance(history, list) or not history:
        fail(1, f"{path} has no per-epoch history to plot (a run that trained no epoch, "
                "or a summary.json written before mtps kept one)")
    if not all(isinstance(e, dict) and isinstance(e.get("tasks"), dict) for e in history):
        fail(2, f"{path}: every history entry needs \"epoch\" and \"tasks\"")
    return summary, history


def main():
    parser = argparse.ArgumentParser(description="Plot per-task AUC and loss by epoch from summary.json.")
    parser.add_argument("summary", help="the run's summary.json")
    parser.add_argument("-o", "--output", help="PNG to write (default: auc_loss_by_epoch.png beside the summary)")
    args = parser.parse_args()
    output = args.output or os.path.join(os.path.dirname(os.path.abspath(args.summary)), "auc_loss_by_epoch.png")
    summary, history = load(args.summary)

    try:
        import matplotlib
    except ImportError:
        fail(2, "matplotlib is missing: apt-get install python3-matplotlib")
    matplotlib.use("Agg")  # a file, no display
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [int(number(e.get("epoch"))) if not math.isnan(number(e.get("epoch"))) else i
              for i, e in enumerate(history)]
    tasks = []
    for entry in history:
        tasks += [name for name in entry["tasks"] if name not in tasks]
    final = summary.get("tasks") if isinstance(summary.get("tasks"), dict) else {}
    best = summary.get("best_epoch")

    def series(task, metric):
        return [number((e["tasks"].get(task) or {}).get(metric)) for e in history]

    fig, axes = plt.subplots(len(tasks), 2, figsize=(11, 3.2 * len(tasks)), squeeze=False)
    for row, task in enumerate(tasks):
        color = f"C{row}"
        auc_ax, loss_ax = axes[row]
        auc = series(task, "auc")
        auc_ax.plot(epochs, auc, marker="o", color=color, label=f"{task} eval AUC")
        oracle = number((final.get(task) or {}).get("oracle_auc"))
        if not math.isnan(oracle):
            auc_ax.axhline(oracle, color=color, linestyle="--", linewidth=1, label=f"oracle AUC {oracle:.4f}")
        if all(math.isnan(v) for v in auc):
            auc_ax.text(0.5, 0.5, "not evaluated", transform=auc_ax.transAxes, ha="center", va="center")
        auc_ax.set_title(f"{task}: AUC by epoch")
        auc_ax.set_ylabel("AUC")

        loss_ax.plot(epochs, series(task, "train_loss"), marker="o", color=color, label="train loss (epoch mean)")
        logloss = series(task, "logloss")
        if not all(math.isnan(v) for v in logloss):
            loss_ax.plot(epochs, logloss, marker="s", linestyle="--", color=color, alpha=0.7, label="eval logloss")
        loss_ax.set_title(f"{task}: loss by epoch")
        loss_ax.set_ylabel("loss")

        for ax in (auc_ax, loss_ax):
            if isinstance(best, int) and best >= 0:
                ax.axvline(best, color="grey", linestyle=":", linewidth=1, label=f"best epoch {best}")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("epoch")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize="small")

    title = f"mtps {summary.get('model', '?')} ({summary.get('mode', '?')})"
    if isinstance(summary.get("servers"), int) and isinstance(summary.get("workers"), int):
        title += f": {summary['servers']} servers, {summary['workers']} workers"
    title += f", {len(history)} epoch(s)"
    if summary.get("stopped_early"):
        title += ", stopped early"
    fig.suptitle(title)
    fig.tight_layout()
    try:
        fig.savefig(output, dpi=100)
    except OSError as e:
        fail(2, f"cannot write {output}: {e.strerror}")
    print(output)


if __name__ == "__main__":
    main()
