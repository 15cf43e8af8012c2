"""Trains the job spec's MMoE in PyTorch on the CPU from CSV data (mtps-datagen --format csv):
the PyTorch side of benchmarks/e2e_bench.sh. Prints and writes a summary.json shaped like mtps's.

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 benchmarks/e2e_torch.py --config DATA/job.yaml \\
        --threads 1 --out RUN/summary.json

It mirrors mtps on the same spec: one embedding table per spec table (a key is the pair
(key_field or field, raw value), so two fields sharing a table share rows only through
key_field; an empty cell is the field's own "missing" row, or no value for a sequence),
rows drawn N(0, init.stddev); single-valued fields summed, multi-valued fields pooled
(sum or mean) with EmbeddingBag; a model.sequence field (and its side fields) pooled by a
sum/mean encoder, or encoded by DIN/BST (sequence_torch.py) over [item ⊕ side values]
against [target ⊕ side targets], the output split back into the fields' places; X =
[fields | dense features], with interaction: {kind: dot} followed by the pairwise dot
products of the fields, into the shared MmoeNet (mmoe_torch.py); mean BCE per task,
weighted sum. Sparse gradients
go to Adagrad at the table's lr and initial accumulator, the dense part to Adam at the
spec's dense optimizer. Batch size, epochs, shuffling and seed come from the spec.

Only the training loop is timed: the CSV is parsed and every epoch's batches are built as
tensors before the clock starts. Per-task AUC (rank formula, ties averaged) and logloss are
measured on the eval split after the last epoch; with --per_epoch after every epoch, with
the spec's training.early_stopping applied as mtps applies it (worker/best_epoch.h: the mean
AUC of the tasks, or one task's; stop after `patience` epochs without a gain above
min_delta), and the summary then reports the best epoch ("best_epoch", "epoch_auc").
"""
import argparse
import csv
import glob
import json
import time

import openblas_kernels

# Before numpy and torch load OpenBLAS: the kernels mtps runs, for a fair comparison.
BLAS_KERNELS = openblas_kernels.use_best_kernels()

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from mmoe_torch import MmoeNet
from sequence_torch import SequenceEncoder


def fail(message):
    raise SystemExit(f"e2e_torch.py: {message}")


class Spec:
    """The parts of the job spec that the PyTorch model mirrors (protocol/job_spec.h)."""

    def __init__(self, path):
        with open(path) as f:
            y = yaml.safe_load(f)
        data = y["data"]
        if data.get("format") != "csv":
            fail(f"{path}: data.format must be csv, got {data.get('format')!r}")
        self.train = sorted(p for g in data["train"] for p in glob.glob(g))
        self.eval = sorted(p for g in data["eval"] for p in glob.glob(g))
        if not self.train or not self.eval:
            fail(f"{path}: no train or eval files match {data['train']} / {data['eval']}")
        self.oracle = data.get("oracle")
        self.sparse = y["features"]["sparse"]
        self.dense = y["features"].get("dense", [])
        self.tables = {t["name"]: t for t in y["tables"]}
        for t in self.tables.values():
            opt = t.get("optimizer", {})
            if opt.get("type", "adagrad") != "adagrad":
                fail(f"table {t['name']}: only adagrad tables are mirrored, got {opt.get('type')}")
            if float(opt.get("l2", 0.0)) != 0.0:
                fail(f"table {t['name']}: optimizer.l2 is not mirrored (sparse Adagrad has none)")
            if t.get("init", {}).get("type", "normal") != "normal":
                fail(f"table {t['name']}: only normal initializers are mirrored")
        self.model = y["model"]
        if self.model.get("type") != "mmoe":
            fail(f"model.type must be mmoe, got {self.model.get('type')!r}")
        self.interaction = (self.model.get("interaction") or {}).get("kind", "none")
        if self.interaction not in ("none", "dot"):
            fail(f"model.interaction.kind: only dot is mirrored, got {self.interaction!r}")
        self.sequence = self.model.get("sequence") or {}
        seq = self.sequence
        if seq:
            if seq.get("bst_pooling", "attention") != "attention":
                fail("model.sequence.bst_pooling: only attention is mirrored")
        self.tasks = y["tasks"]
        for task in self.tasks:
            if task.get("loss", "bce") != "bce":
                fail(f"task {task['name']}: only bce tasks are mirrored, got {task.get('loss')}")
        training = y["training"]
        if training.get("task_weighting", "fixed") != "fixed":
            fail("training.task_weighting: only fixed weights are mirrored")
        dense_opt = training.get("dense_optimizer", {"type": "adam", "lr": 0.001})
        if dense_opt.get("type", "adam") != "adam":
            fail(f"training.dense_optimizer: only adam is mirrored, got {dense_opt.get('type')}")
        self.dense_opt = dense_opt
        self.batch_size = int(training.get("batch_size", 1024))
        self.eval_batch_size = int(training.get("eval_batch_size", 4096))
        self.epochs = int(training.get("epochs", 1))
        self.seed = int(training.get("seed", 1))
        self.shuffle = bool(data.get("shuffle", True))
        self.early_stopping = training.get("early_stopping") or {}


class Dataset:
    """Columns of the CSV files as arrays: labels [N x T], dense [N x D], and per sparse field
    a CSR pair (row offsets, row indices into the field's table)."""

    def __init__(self, spec, files, vocabs):
        label_cols = [t["label"] for t in spec.tasks]
        dense_cols = [d.get("column", d["name"]) for d in spec.dense]
        dense_defaults = [float(d.get("default", 0.0)) for d in spec.dense]
        sparse_cols = [f.get("column", f["name"]) for f in spec.sparse]
        labels, dense = [], []
        values = [[] for _ in spec.sparse]
        lengths = [[] for _ in spec.sparse]
        for path in files:
            with open(path, newline="") as f:
                reader = csv.reader(f)
                header = next(reader)
                where = {name: i for i, name in enumerate(header)}
                for col in label_cols + dense_cols + sparse_cols:
                    if col not in where:
                        fail(f"{path}: no column {col!r} in the header {header}")
                li = [where[c] for c in label_cols]
                di = [where[c] for c in dense_cols]
                si = [where[c] for c in sparse_cols]
                for line, row in enumerate(reader, start=2):
                    if len(row) != len(header):
                        fail(f"{path}:{line}: {len(row)} cells, the header has {len(header)}")
                    labels.append([float(row[i]) for i in li])
                    dense.append([float(row[i]) if row[i] else dflt for i, dflt in zip(di, dense_defaults)])
                    for k, (field, i) in enumerate(zip(spec.sparse, si)):
                        cell = row[i]
                        vocab = vocabs[field["table"]]
                        name = field["name"]
                        key_name = field.get("key_field", name)
                        sequence = field.get("pooling") == "sequence"
                        if not cell:
                            # A sequence's empty cell is no value; others, the field's own
                            # "missing" row.
                            keys = [] if sequence else [(name, None)]
                        elif field.get("multi_valued", False):
                            keys = [(key_name, v) for v in cell.split("|")]
                            if sequence:  # the most recent max_length values, as mtps keeps
                                keys = keys[-int(field["max_length"]):]
                        else:
                            keys = [(key_name, cell)]
                        for key in keys:
                            values[k].append(vocab.setdefault(key, len(vocab)))
                        lengths[k].append(len(keys))
        self.rows = len(labels)
        self.labels = np.asarray(labels, dtype=np.float32).reshape(self.rows, len(label_cols))
        self.dense = np.asarray(dense, dtype=np.float32).reshape(self.rows, len(dense_cols))
        self.values = [np.asarray(v, dtype=np.int64) for v in values]
        self.offsets = [np.concatenate([[0], np.cumsum(n, dtype=np.int64)]) for n in lengths]

    def batch(self, rows):
        """Tensors of the records `rows`: (labels, dense, [(indices, bag offsets)] per field)."""
        fields = []
        for values, offsets in zip(self.values, self.offsets):
            starts, ends = offsets[rows], offsets[rows + 1]
            counts = ends - starts
            bag_offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
            # Positions of every value of the chosen rows, in row order.
            positions = np.repeat(starts - bag_offsets, counts) + np.arange(counts.sum())
            fields.append((torch.from_numpy(values[positions]), torch.from_numpy(bag_offsets)))
        return (torch.from_numpy(self.labels[rows]), torch.from_numpy(self.dense[rows]), fields)


class Model(torch.nn.Module):
    def __init__(self, spec, vocabs):
        super().__init__()
        self.table_names = list(spec.tables)
        self.tables = torch.nn.ParameterList()
        for name in self.table_names:
            t = spec.tables[name]
            rows = max(1, len(vocabs[name]))
            stddev = float(t.get("init", {}).get("stddev", 0.01))
            self.tables.append(torch.nn.Parameter(stddev * torch.randn(rows, int(t.get("dim", 16)))))
        index = {name: i for i, name in enumerate(self.table_names)}
        self.field_table = [index[f["table"]] for f in spec.sparse]
        seq = spec.sequence
        encoder = seq.get("encoder", "din") if seq else None
        self.field_mode = ["mean" if f.get("pooling", "sum") == "mean" or
                           (f.get("pooling") == "sequence" and encoder == "mean") else "sum"
                           for f in spec.sparse]
        dims = [int(spec.tables[f["table"]].get("dim", 16)) for f in spec.sparse]
        field_index = {f["name"]: i for i, f in enumerate(spec.sparse)}
        # Encoded by DIN/BST: [(sequence field, target field)] for the items and each side.
        self.parts = []
        self.sequence = None
        if seq and encoder in ("din", "bst"):
            pairs = [(seq["field"], seq["target"])] + [(s["field"], s["target"]) for s in seq.get("side", [])]
            self.parts = [(field_index[a], field_index[b]) for a, b in pairs]
            width = sum(dims[a] for a, _ in self.parts)
            self.max_len = int(spec.sparse[self.parts[0][0]]["max_length"])
            self.sequence = SequenceEncoder(width, encoder, self.max_len,
                                            list(seq.get("attention_hidden", [36])),
                                            int(seq.get("heads", 2)), int(seq.get("ffn_hidden", 64)),
                                            bool(seq.get("din_positions", False)),
                                            bool(seq.get("weights_softmax", False)))
        self.dot = spec.interaction == "dot"
        fields = len(spec.sparse)
        d_in = sum(dims) + len(spec.dense) + (fields * (fields - 1) // 2 if self.dot else 0)
        m = spec.model
        self.net = MmoeNet(d_in, int(m.get("experts", 8)), list(m.get("expert_units", [64])),
                           list(m.get("tower_units", [32])), len(spec.tasks))
        self.register_buffer("task_weights", torch.tensor([float(t.get("weight", 1.0)) for t in spec.tasks]))

    def padded(self, idx, off, table):
        """A CSR field as [B x max_len x dim] rows, oldest first, and its [B x max_len] mask."""
        batch = off.shape[0]
        counts = torch.diff(torch.cat([off, torch.tensor([idx.shape[0]])]))
        pos = torch.arange(idx.shape[0]) - torch.repeat_interleave(off, counts)
        rec = torch.repeat_interleave(torch.arange(batch), counts)
        index = torch.zeros(batch, self.max_len, dtype=torch.int64)
        mask = torch.zeros(batch, self.max_len)
        index[rec, pos] = idx
        mask[rec, pos] = 1.0
        return F.embedding(index, self.tables[table], sparse=True), mask

    def forward(self, dense, fields):
        pooled = [F.embedding_bag(idx, self.tables[t], off, mode=mode, sparse=True)
                  for (idx, off), t, mode in zip(fields, self.field_table, self.field_mode)]
        if self.sequence is not None:
            items, targets, mask = [], [], None
            for f, t in self.parts:
                h, mask = self.padded(*fields[f], self.field_table[f])
                items.append(h)
                targets.append(pooled[t])
            out = self.sequence(torch.cat(items, dim=2) * mask.unsqueeze(-1), mask,
                                torch.cat(targets, dim=1))
            at = 0
            for f, _ in self.parts:
                width = pooled[f].shape[1]
                pooled[f] = out[:, at:at + width]
                at += width
        x = [torch.cat(pooled + [dense], dim=1)]
        if self.dot:
            e = torch.stack(pooled, dim=1)  # [B x fields x dim]
            dots = torch.bmm(e, e.transpose(1, 2))
            i, j = torch.triu_indices(len(pooled), len(pooled), offset=1)
            x.append(dots[:, i, j])
        return self.net(torch.cat(x, dim=1))


def auc(labels, scores):
    """Mann-Whitney AUC with tied scores given their average rank."""
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]
    positives = labels > 0.5
    npos, nneg = positives.sum(), (~positives).sum()
    if npos == 0 or nneg == 0:
        return float("nan")
    return float((ranks[positives].sum() - npos * (npos + 1) / 2.0) / (npos * nneg))


def logloss(labels, probs):
    p = np.clip(probs.astype(np.float64), 1e-7, 1 - 1e-7)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, help="job spec whose data are CSV files")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--out", help="write the summary JSON here too")
    parser.add_argument("--per_epoch", action="store_true",
                        help="evaluate after every epoch, stop early as the spec says, report the best epoch")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    spec = Spec(args.config)
    torch.manual_seed(spec.seed)

    load_start = time.perf_counter()
    vocabs = {name: {} for name in spec.tables}
    train = Dataset(spec, spec.train, vocabs)
    evaluation = Dataset(spec, spec.eval, vocabs)
    model = Model(spec, vocabs)
    # One Adagrad group per table, each with its table's hyper-parameters (job_spec.h defaults).
    table_opts = [spec.tables[n].get("optimizer", {}) for n in model.table_names]
    sparse_opt = torch.optim.Adagrad(
        [{"params": [w], "lr": float(o.get("lr", 0.01)), "eps": float(o.get("epsilon", 1e-8)),
          "initial_accumulator_value": float(o.get("initial_accumulator", 0.1))}
         for o, w in zip(table_opts, model.tables)])
    # Adagrad fills its accumulators from the constructor's argument, not from the groups.
    for group in sparse_opt.param_groups:
        for w in group["params"]:
            sparse_opt.state[w]["sum"].fill_(group["initial_accumulator_value"])
    d = spec.dense_opt
    # mtps adds l2 * w to the gradient, as Adam's weight_decay does.
    dense_params = [p for name, p in model.named_parameters() if not name.startswith("tables.")]
    dense_opt = torch.optim.Adam(dense_params, lr=float(d.get("lr", 0.001)),
                                 betas=(float(d.get("beta1", 0.9)), float(d.get("beta2", 0.999))),
                                 eps=float(d.get("epsilon", 1e-8)), weight_decay=float(d.get("l2", 0.0)))
    generator = np.random.default_rng(spec.seed)
    epochs = []
    for _ in range(spec.epochs):
        order = generator.permutation(train.rows) if spec.shuffle else np.arange(train.rows)
        epochs.append([train.batch(order[i:i + spec.batch_size])
                       for i in range(0, train.rows, spec.batch_size)])
    load_seconds = time.perf_counter() - load_start

    def evaluate():
        predictions = []
        with torch.no_grad():
            for i in range(0, evaluation.rows, spec.eval_batch_size):
                _, dense, fields = evaluation.batch(np.arange(i, min(i + spec.eval_batch_size, evaluation.rows)))
                predictions.append(torch.sigmoid(model(dense, fields)).numpy())
        predictions = np.concatenate(predictions)
        result = {}
        for k, task in enumerate(spec.tasks):
            y, p = evaluation.labels[:, k], predictions[:, k]
            result[task["name"]] = {"auc": auc(y, p), "logloss": logloss(y, p)}
        return result

    es = spec.early_stopping
    es_task, patience, min_delta = es.get("task", "mean"), int(es.get("patience", 0)), float(es.get("min_delta", 0))

    def metric(result):
        if es_task == "mean":
            return float(np.mean([t["auc"] for t in result.values()]))
        return result[es_task]["auc"]

    train_seconds, cpu_seconds, samples = 0.0, 0.0, 0
    best, best_epoch, reference, since, epoch_auc = None, -1, None, 0, []
    for epoch, batches in enumerate(epochs):
        start, cpu_start = time.perf_counter(), time.process_time()
        for labels, dense, fields in batches:
            sparse_opt.zero_grad(set_to_none=True)
            dense_opt.zero_grad(set_to_none=True)
            logits = model(dense, fields)
            per_task = F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(0)
            (per_task * model.task_weights).sum().backward()
            sparse_opt.step()
            dense_opt.step()
            samples += labels.shape[0]
        train_seconds += time.perf_counter() - start
        cpu_seconds += time.process_time() - cpu_start
        if not args.per_epoch:
            continue
        result = evaluate()
        m = metric(result)
        epoch_auc.append({name: t["auc"] for name, t in result.items()})
        print(f"epoch {epoch}: " + ", ".join(f"{n} auc {t['auc']:.4f}" for n, t in result.items()), flush=True)
        if best is None or m > metric(best):
            best, best_epoch = result, epoch
        if reference is None or m > reference + min_delta:
            reference, since = m, 0
        else:
            since += 1
        if patience > 0 and since >= patience:
            break
    tasks = best if args.per_epoch else evaluate()
    oracle = {}
    if spec.oracle:
        with open(spec.oracle) as f:
            oracle = json.load(f).get("tasks", {})
    for name in tasks:
        if "oracle_auc" in oracle.get(name, {}):
            tasks[name]["oracle_auc"] = oracle[name]["oracle_auc"]
    summary = {
        "model": "mmoe", "mode": "pytorch", "servers": 0, "workers": 1,
        "epochs": len(epoch_auc) if args.per_epoch else spec.epochs,
        "samples": samples, "train_seconds": train_seconds,
        "samples_per_sec": samples / train_seconds if train_seconds > 0 else 0.0,
        "cpu_seconds": cpu_seconds, "load_seconds": load_seconds, "threads": args.threads,
        "torch": torch.__version__, "train_rows": train.rows, "eval_rows": evaluation.rows,
        "tasks": tasks,
    }
    if args.per_epoch:
        summary["best_epoch"] = best_epoch
        summary["epoch_auc"] = epoch_auc
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
