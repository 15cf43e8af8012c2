"""mtps's behaviour-sequence encoders in PyTorch, shared by the benchmarks that compare against
them (models_vs_torch.py --encoder din|bst).

    enc = SequenceEncoder(dim=16, encoder="din", max_len=20, attention_hidden=[36])
    out = enc(h, mask, target)   # h: [B x L x dim] padded items, mask: [B x L] (1 = item),
                                 # target: [B x dim] -> [B x dim]

It mirrors models/sequence_encoder.cc: DIN target attention (an MLP over [h, t, h-t, h*t],
ReLU between layers, one linear score per item, output sum_j w_j * h_j over the items with
w_j = score_j, or with weights_softmax the softmax of the scores over the record's items;
with din_positions the learned positions below are added first), and BST
(learned positions indexed by recency, position 0 the most recent item,
one post-norm Transformer encoder layer with a key padding mask, FFN with ReLU, no dropout)
followed by the same target attention.
"""
import torch
import torch.nn.functional as F


class TargetAttention(torch.nn.Module):
    def __init__(self, dim, hidden, softmax=False):
        super().__init__()
        self.softmax = softmax
        layers, prev = [], 4 * dim
        for units in hidden:
            layers += [torch.nn.Linear(prev, units), torch.nn.ReLU()]
            prev = units
        layers.append(torch.nn.Linear(prev, 1))
        self.scorer = torch.nn.Sequential(*layers)

    def forward(self, h, mask, target):
        t = target.unsqueeze(1).expand_as(h)
        scores = self.scorer(torch.cat([h, t, h - t, h * t], dim=-1)).squeeze(-1)
        if self.softmax:
            # Over the record's items only; a record without items gets weights 0 (output 0).
            scores = torch.softmax(scores.masked_fill(mask == 0, -1e30), dim=1)
        scores = scores * mask
        return torch.bmm(scores.unsqueeze(1), h).squeeze(1)


class SequenceEncoder(torch.nn.Module):
    def __init__(self, dim, encoder, max_len, attention_hidden, heads=2, ffn_hidden=64,
                 din_positions=False, weights_softmax=False):
        super().__init__()
        self.encoder = encoder
        self.attention = TargetAttention(dim, attention_hidden, weights_softmax)
        self.add_positions = encoder == "bst" or din_positions
        if self.add_positions:
            self.positions = torch.nn.Parameter(torch.empty(max_len, dim))
            bound = (6.0 / (max_len + dim)) ** 0.5
            torch.nn.init.uniform_(self.positions, -bound, bound)
        if encoder == "bst":
            self.block = torch.nn.TransformerEncoderLayer(
                dim, heads, dim_feedforward=ffn_hidden, dropout=0.0, batch_first=True,
                norm_first=False)
        for module in self.modules():
            if isinstance(module, torch.nn.Linear):
                torch.nn.init.xavier_uniform_(module.weight)
                torch.nn.init.zeros_(module.bias)
        # As models/target_attention.cc: raw weights start at 1 (DIN begins as sum pooling);
        # softmax weights are invariant to the bias (0).
        if not weights_softmax:
            torch.nn.init.ones_(self.attention.scorer[-1].bias)

    def forward(self, h, mask, target):
        lengths = mask.sum(1, keepdim=True).long()
        if self.add_positions:
            recency = (lengths - 1 - torch.arange(h.shape[1]).unsqueeze(0)).clamp(min=0)
            h = h + self.positions[recency] * mask.unsqueeze(-1)
        if self.encoder == "bst":
            # A record without items would mask every key (NaN rows): let it attend to its
            # first (padding) slot; target attention still gives it weight 0.
            pad = mask == 0
            pad[:, 0] &= lengths.squeeze(1) > 0
            h = self.block(h, src_key_padding_mask=pad)
        return self.attention(h, mask, target)
