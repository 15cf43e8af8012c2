"""The issue's reference MMoE in PyTorch, timed like benchmarks/models_bench.cc.

8 single-valued sparse fields of dim 16 (EmbeddingBag over a pulled-rows buffer of 1000
rows each, gradients to those rows), 8 experts of 64 units computed as one fused Linear,
one softmax gate per task (mixture by broadcast multiply + sum), towers of 32, 2 BCE-with-logits tasks, batch 1024. Prints
samples/s of forward + backward for the thread count given.

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 models_vs_torch.py --threads 1
"""
import argparse
import time

import torch
import torch.nn.functional as F

BATCH, FIELDS, DIM, ROWS, EXPERTS, EXPERT_UNITS, TOWER, TASKS = 1024, 8, 16, 1000, 8, 64, 32, 2


class Mmoe(torch.nn.Module):
    def __init__(self):
        super().__init__()
        d_in = FIELDS * DIM
        self.experts = torch.nn.Linear(d_in, EXPERTS * EXPERT_UNITS)
        self.gates = torch.nn.ModuleList(torch.nn.Linear(d_in, EXPERTS) for _ in range(TASKS))
        self.towers = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.Linear(EXPERT_UNITS, TOWER), torch.nn.ReLU(),
                                torch.nn.Linear(TOWER, 1)) for _ in range(TASKS))

    def forward(self, tables, rows, offsets, labels):
        x = torch.cat([F.embedding_bag(r, t, offsets, mode="sum") for t, r in zip(tables, rows)],
                      dim=1)
        e = F.relu(self.experts(x)).view(-1, EXPERTS, EXPERT_UNITS)
        loss = 0
        for k in range(TASKS):
            g = torch.softmax(self.gates[k](x), dim=1)
            # Broadcast-multiply and sum: on the CPU several times faster than bmm, whose
            # 1024 tiny [1x8]x[8x64] products dominated a profile of this step.
            mixed = (g.unsqueeze(2) * e).sum(dim=1)
            logit = self.towers[k](mixed).squeeze(1)
            loss = loss + F.binary_cross_entropy_with_logits(logit, labels[:, k])
        return loss


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    model = Mmoe()
    tables = [(0.1 * torch.randn(ROWS, DIM)).requires_grad_() for _ in range(FIELDS)]
    rows = [torch.randint(0, ROWS, (BATCH,)) for _ in range(FIELDS)]
    offsets = torch.arange(BATCH)
    labels = torch.randint(0, 2, (BATCH, TASKS)).float()

    def step():
        model.zero_grad(set_to_none=False)
        for t in tables:
            t.grad = None
        model(tables, rows, offsets, labels).backward()

    for _ in range(5):
        step()
    steps, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < args.seconds:
        step()
        steps += 1
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    # cpu_ms/step counts every thread of the process: steadier than wall time on a shared machine.
    print(f"torch {torch.__version__} threads={args.threads} samples/s={steps * BATCH / elapsed:.0f} "
          f"ms/step={1000 * elapsed / steps:.2f} cpu_ms/step={1000 * cpu / steps:.2f}")


if __name__ == "__main__":
    main()
