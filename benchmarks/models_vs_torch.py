"""The issue's reference MMoE in PyTorch, timed like benchmarks/models_bench.cc.

8 single-valued sparse fields of dim 16 (EmbeddingBag over a pulled-rows buffer of 1000
rows each, gradients to those rows), 8 experts of 64 units computed as one fused Linear,
one softmax gate per task (mixture by broadcast multiply + sum), towers of 32, 2
BCE-with-logits tasks, batch 1024 (the model is mmoe_torch.py, shared with e2e_torch.py).
Prints samples/s of forward + backward for the thread count given.

With --encoder din|bst a ninth field is the user's behaviour sequence: 1..20 items (uniform)
of table 1 (the target item's table), padded to the batch's longest, encoded by DIN or BST
(sequence_torch.py, attention MLP [36], 2 heads, FFN 64) into that field's 16 columns: the
same models as models_bench's MmoeDin / MmoeBst. --side adds a tenth field, the history's
side sequence (`model.sequence.side`: one row of table 2 per history item, as the items'
categories): the encoder runs on [item ⊕ side] (32 columns) against [f1 ⊕ f2] and its
output is split back into the two fields' columns; --positions (DIN's din_positions) and
--softmax (weights_softmax) and --attention_hidden N as in the spec. `--encoder din --side
--positions --softmax --attention_hidden 64` and `--encoder bst --side --softmax` are
models_bench's MmoeDinSide / MmoeBstSide.

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 models_vs_torch.py --threads 1 [--encoder din]
"""
import argparse
import time

import openblas_kernels

# Before numpy and torch load OpenBLAS: the kernels mtps runs, for a fair comparison.
BLAS_KERNELS = openblas_kernels.use_best_kernels()

import torch
import torch.nn.functional as F

from mmoe_torch import MmoeNet
from sequence_torch import SequenceEncoder

BATCH, FIELDS, DIM, ROWS, EXPERTS, EXPERT_UNITS, TOWER, TASKS = 1024, 8, 16, 1000, 8, 64, 32, 2
MAX_LEN, TARGET_TABLE, SIDE_TABLE = 20, 1, 2


class Mmoe(torch.nn.Module):
    """Sum-pooled embedding bags of FIELDS tables feeding the shared MMoE (mmoe_torch.py)."""

    def __init__(self, encoder, side=False, positions=False, softmax=False, attention_hidden=36):
        super().__init__()
        parts = (encoder != "none") * (1 + side)
        self.net = MmoeNet((FIELDS + parts) * DIM, EXPERTS, [EXPERT_UNITS], [TOWER], TASKS)
        self.sequence = (SequenceEncoder(parts * DIM, encoder, MAX_LEN, [attention_hidden],
                                         din_positions=positions, weights_softmax=softmax)
                         if encoder != "none" else None)
        self.side = side

    def forward(self, tables, rows, offsets, labels, history=None, mask=None, side=None):
        pooled = [F.embedding_bag(r, t, offsets, mode="sum") for t, r in zip(tables, rows)]
        if self.sequence is not None:
            h = F.embedding(history, tables[TARGET_TABLE])
            target = pooled[TARGET_TABLE]
            if self.side:
                h = torch.cat([h, F.embedding(side, tables[SIDE_TABLE])], dim=2)
                target = torch.cat([target, pooled[SIDE_TABLE]], dim=1)
            out = self.sequence(h * mask.unsqueeze(-1), mask, target)
            pooled += list(torch.split(out, DIM, dim=1))
        x = torch.cat(pooled, dim=1)
        return F.binary_cross_entropy_with_logits(self.net(x), labels, reduction="none").mean(0).sum()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--encoder", choices=["none", "din", "bst"], default="none")
    parser.add_argument("--side", action="store_true", help="a side sequence of table 2")
    parser.add_argument("--positions", action="store_true", help="din_positions")
    parser.add_argument("--softmax", action="store_true", help="weights_softmax")
    parser.add_argument("--attention_hidden", type=int, default=36, help="DIN's attention MLP")
    args = parser.parse_args()
    if args.encoder == "none" and (args.side or args.positions or args.softmax):
        parser.error("--side, --positions and --softmax need --encoder din|bst")
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    model = Mmoe(args.encoder, args.side, args.positions, args.softmax, args.attention_hidden)
    tables = [(0.1 * torch.randn(ROWS, DIM)).requires_grad_() for _ in range(FIELDS)]
    rows = [torch.randint(0, ROWS, (BATCH,)) for _ in range(FIELDS)]
    offsets = torch.arange(BATCH)
    labels = torch.randint(0, 2, (BATCH, TASKS)).float()
    # The padded history and its mask, as the data pipeline would hand them over.
    lengths = torch.randint(1, MAX_LEN + 1, (BATCH, 1))
    longest = int(lengths.max())
    mask = (torch.arange(longest).unsqueeze(0) < lengths).float()
    history = torch.randint(0, ROWS, (BATCH, longest)) * mask.long()
    side = torch.randint(0, ROWS, (BATCH, longest)) * mask.long() if args.side else None
    seq = (history, mask, side) if args.encoder != "none" else (None, None, None)

    def step():
        model.zero_grad(set_to_none=False)
        for t in tables:
            t.grad = None
        model(tables, rows, offsets, labels, *seq).backward()

    for _ in range(5):
        step()
    steps, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < args.seconds:
        step()
        steps += 1
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    # cpu_ms/step counts every thread of the process: steadier than wall time on a shared machine.
    print(f"torch {torch.__version__} blas={BLAS_KERNELS} encoder={args.encoder}{'+side' if args.side else ''} threads={args.threads} samples/s={steps * BATCH / elapsed:.0f} "
          f"ms/step={1000 * elapsed / steps:.2f} cpu_ms/step={1000 * cpu / steps:.2f}")


if __name__ == "__main__":
    main()
