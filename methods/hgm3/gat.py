"""Graph attention over the hierarchical semantic graph (HGM3 Sec. 3.3, GraphMotion ``gat.py``).

Nodes (1 motion + 4 action + 8 specific = 13) carry frozen text-encoder features: the
sentence embedding for the motion node, the mean of contextual token states over each
span for action/specific nodes (GraphMotion's choice; we map spans to word pieces with
the tokenizer's character offsets instead of assuming one token per word). Features are
L2-normalised so sentence and span vectors share a scale (MiniLM's sentence vector is
unit-norm).

One typed-edge GAT layer (Velickovic et al. 2018) as GraphMotion: shared ``W``, a
generic attention vector on ``[Wh_i; Wh_j]`` over the adjacency plus one attention vector
per edge type (12) added with weight 0.01, LeakyReLU(0.2), dropout, ELU, residual. We
normalise the softmax over each node's neighbours ``j`` (the standard GAT form;
GraphMotion's code normalises over the other index, which we do not reproduce).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from methods.hgm3.graph import EDGE_TYPES, N_ACTIONS, N_SPECIFICS, SemanticGraph

N_NODES = 1 + N_ACTIONS + N_SPECIFICS


def _span_mean(states, offsets, att, start: int, end: int):
    """Mean of token states whose char span overlaps ``[start, end)`` (None if none)."""
    sel = att & (offsets[:, 1] > start) & (offsets[:, 0] < end) & (offsets[:, 1] > offsets[:, 0])
    return states[sel].mean(0) if bool(sel.any()) else None


@torch.no_grad()
def graph_tensors(graphs: list[SemanticGraph], text_encoder) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per caption: ``(nodes [13, D], present [13] bool, edges [12, 13, 13] bool)`` (CPU).

    One graph: the token states of its caption alone through ``caption_states`` (which also caches
    the caption's sentence vector for the sentence condition, so the caption is encoded once)."""
    caps = [g.caption for g in graphs]
    one = len(caps) == 1
    states, offsets, att, sent = text_encoder.caption_states(caps[0]) if one else text_encoder.token_states(caps)
    out = []
    for b, g in enumerate(graphs):
        nodes = sent[b].expand(N_NODES, -1).clone()  # padding slots hold the sentence vector (GraphMotion)
        present = torch.zeros(N_NODES, dtype=torch.bool)
        present[0] = True
        edges = torch.zeros(len(EDGE_TYPES), N_NODES, N_NODES, dtype=torch.bool)
        ma, other = EDGE_TYPES.index("MA"), EDGE_TYPES.index("OTHERS")
        for i, sp in enumerate(g.actions[:N_ACTIONS]):
            v = _span_mean(states[b], offsets[b], att[b], sp.start, sp.end)
            if v is not None:
                nodes[1 + i] = v
            present[1 + i] = True
            edges[ma, 0, 1 + i] = edges[ma, 1 + i, 0] = True
        for j, sp in enumerate(g.specifics[:N_SPECIFICS]):
            v = _span_mean(states[b], offsets[b], att[b], sp.start, sp.end)
            if v is not None:
                nodes[1 + N_ACTIONS + j] = v
            present[1 + N_ACTIONS + j] = True
        for vi, ej, role in g.relations:
            if vi < N_ACTIONS and ej < N_SPECIFICS:
                t, a, s = g.edge_type(role), 1 + vi, 1 + N_ACTIONS + ej
                edges[t, a, s] = edges[t, s, a] = True
        idx = torch.arange(N_NODES)
        edges[other, idx, idx] = present
        out.append((F.normalize(nodes, dim=-1), present, edges))
    return out


class TypedGAT(nn.Module):
    """One GAT layer with 12 typed attention vectors. ``x [B, N, D]``, ``edges [B, 12, N, N]`` -> ``[B, N, D]``."""

    def __init__(self, dim: int, n_types: int = len(EDGE_TYPES), dropout: float = 0.1, type_weight: float = 0.01):
        super().__init__()
        self.W = nn.Linear(dim, dim, bias=False)
        self.a = nn.Parameter(torch.empty(2, dim))
        self.a_typed = nn.Parameter(torch.empty(n_types, 2, dim))
        self.dropout, self.type_weight = dropout, type_weight
        nn.init.xavier_uniform_(self.W.weight, gain=1.414)
        nn.init.xavier_uniform_(self.a, gain=1.414)
        nn.init.xavier_uniform_(self.a_typed.view(n_types * 2, dim), gain=1.414)

    def forward(self, x: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
        h = self.W(x)  # [B, N, D]
        # a . [h_i ; h_j] = a_0 . h_i + a_1 . h_j
        generic = F.leaky_relu((h @ self.a[0])[..., :, None] + (h @ self.a[1])[..., None, :], 0.2)
        ti = torch.einsum("bnd,td->btn", h, self.a_typed[:, 0])
        tj = torch.einsum("bnd,td->btn", h, self.a_typed[:, 1])
        typed = (F.leaky_relu(ti[..., :, None] + tj[..., None, :], 0.2) * edges).sum(1)
        adj = edges.any(1)
        logits = torch.where(adj, generic + self.type_weight * typed, torch.full_like(generic, -9e15))
        att = F.dropout(logits.softmax(-1), self.dropout, self.training)
        return x + F.elu(att @ h)
