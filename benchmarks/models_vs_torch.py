"""The issue's reference MMoE in PyTorch, timed like benchmarks/models_bench.cc.

8 single-valued sparse fields of dim 16 (EmbeddingBag over a pulled-rows buffer of 1000
rows each, gradients to those rows), 8 experts of 64 units computed as one fused Linear,
one softmax gate per task (mixture by broadcast multiply + sum), towers of 32, 2
BCE-with-logits tasks, batch 1024 (the model is mmoe_torch.py, shared with e2e_torch.py).
Prints samples/s of forward + backward for the thread count given.

With --encoder din|bst a ninth field is the user's behaviour sequence: 1..20 items (uniform)
of table 1 (the target item's table), padded to the batch's longest, encoded by DIN or BST
(sequence_torch.py, attention MLP [36], 2 heads, FFN 64) into that field's 16 columns: the
same models as models_bench's MmoeDin / MmoeBst.

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
MAX_LEN, TARGET_TABLE = 20, 1


class Mmoe(torch.nn.Module):
    """Sum-pooled embedding bags of FIELDS tables feeding the shared MMoE (mmoe_torch.py)."""

    def __init__(self, encoder):
        super().__init__()
        fields = FIELDS + (encoder != "none")
        self.net = MmoeNet(fields * DIM, EXPERTS, [EXPERT_UNITS], [TOWER], TASKS)
        self.sequence = (SequenceEncoder(DIM, encoder, MAX_LEN, [36]) if encoder != "none"
                         else None)

    def forward(self, tables, rows, offsets, labels, history=None, mask=None):
        pooled = [F.embedding_bag(r, t, offsets, mode="sum") for t, r in zip(tables, rows)]
        if self.sequence is not None:
            h = F.embedding(history, tables[TARGET_TABLE]) * mask.unsqueeze(-1)
            pooled.append(self.sequence(h, mask, pooled[TARGET_TABLE]))
        x = torch.cat(pooled, dim=1)
        return F.binary_cross_entropy_with_logits(self.net(x), labels, reduction="none").mean(0).sum()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--encoder", choices=["none", "din", "bst"], default="none")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    model = Mmoe(args.encoder)
    tables = [(0.1 * torch.randn(ROWS, DIM)).requires_grad_() for _ in range(FIELDS)]
    rows = [torch.randint(0, ROWS, (BATCH,)) for _ in range(FIELDS)]
    offsets = torch.arange(BATCH)
    labels = torch.randint(0, 2, (BATCH, TASKS)).float()
    # The padded history and its mask, as the data pipeline would hand them over.
    lengths = torch.randint(1, MAX_LEN + 1, (BATCH, 1))
    longest = int(lengths.max())
    mask = (torch.arange(longest).unsqueeze(0) < lengths).float()
    history = torch.randint(0, ROWS, (BATCH, longest)) * mask.long()
    seq = (history, mask) if args.encoder != "none" else (None, None)

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
    print(f"torch {torch.__version__} blas={BLAS_KERNELS} encoder={args.encoder} threads={args.threads} samples/s={steps * BATCH / elapsed:.0f} "
          f"ms/step={1000 * elapsed / steps:.2f} cpu_ms/step={1000 * cpu / steps:.2f}")


if __name__ == "__main__":
    main()
