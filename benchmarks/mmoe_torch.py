"""The dense part of mtps's MMoE in PyTorch, shared by the benchmarks that compare against it
(models_vs_torch.py: one step on synthetic input; e2e_torch.py: training on generated data).

    net = MmoeNet(d_in=99, experts=4, expert_units=[64], tower_units=[32], tasks=2)
    logits = net(x)  # x: [B x d_in] (pooled embeddings | dense features) -> [B x tasks]

It mirrors models/mmoe_trunk.cc: E expert MLPs (ReLU after every layer) computed as one wide
first layer and grouped layers after it, one softmax gate per task over the same input, and
per task a tower MLP (ReLU between layers) ending in one logit. Weights are Glorot-uniform
and biases zero, as in models/dense_parameters.h.
"""
import torch
import torch.nn.functional as F


class MmoeNet(torch.nn.Module):
    def __init__(self, d_in, experts, expert_units, tower_units, tasks):
        super().__init__()
        self.experts = experts
        self.width = expert_units[-1]
        # The first expert layer of every expert is one [d_in x E*u0] matmul.
        self.expert_first = torch.nn.Linear(d_in, experts * expert_units[0])
        # Deeper expert layers are per expert: [E x in x out] applied with a batched matmul.
        self.expert_w = torch.nn.ParameterList()
        self.expert_b = torch.nn.ParameterList()
        for prev, units in zip(expert_units, expert_units[1:]):
            self.expert_w.append(torch.nn.Parameter(torch.empty(experts, prev, units)))
            self.expert_b.append(torch.nn.Parameter(torch.zeros(experts, 1, units)))
        self.gates = torch.nn.ModuleList(torch.nn.Linear(d_in, experts) for _ in range(tasks))
        self.towers = torch.nn.ModuleList()
        for _ in range(tasks):
            layers, prev = [], self.width
            for units in tower_units:
                layers += [torch.nn.Linear(prev, units), torch.nn.ReLU()]
                prev = units
            layers.append(torch.nn.Linear(prev, 1))
            self.towers.append(torch.nn.Sequential(*layers))
        for module in self.modules():
            if isinstance(module, torch.nn.Linear):
                torch.nn.init.xavier_uniform_(module.weight)
                torch.nn.init.zeros_(module.bias)
        for w in self.expert_w:
            bound = (6.0 / (w.shape[1] + w.shape[2])) ** 0.5
            torch.nn.init.uniform_(w, -bound, bound)

    def forward(self, x):
        e = F.relu(self.expert_first(x))
        if len(self.expert_w) > 0:
            e = e.view(-1, self.experts, e.shape[1] // self.experts).transpose(0, 1)  # [E x B x u]
            for w, b in zip(self.expert_w, self.expert_b):
                e = F.relu(torch.baddbmm(b, e, w))
            e = e.transpose(0, 1).reshape(x.shape[0], -1)
        e = e.view(-1, self.experts, self.width)
        logits = []
        for gate, tower in zip(self.gates, self.towers):
            g = torch.softmax(gate(x), dim=1)
            # Broadcast-multiply and sum: on the CPU several times faster than bmm, whose
            # many tiny [1xE]x[Exwidth] products dominated a profile of this step.
            mixed = (g.unsqueeze(2) * e).sum(dim=1)
            logits.append(tower(mixed))
        return torch.cat(logits, dim=1)
