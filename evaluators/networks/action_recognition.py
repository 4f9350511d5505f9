"""Action-recognition evaluators of the action-to-motion protocol (ACTOR / MLD), official key layouts.

Two networks, as the papers use them:

- :class:`MotionDiscriminatorA2M`: the Action2Motion GRU recogniser that ACTOR and MLD use for
  HumanAct12 (``src/evaluate/action2motion/models.py``: ``recurrent`` = GRU(72 -> 128, 2
  layers), ``linear1`` (128 -> 30), ``linear2`` (30 -> 12)); the FID / diversity features are
  ``tanh(linear1(h_last))`` (30-d, ``MotionDiscriminatorForFID``), where ``h_last`` is the GRU
  output at each sequence's last valid frame.
- :class:`STGCN`: the ST-GCN recogniser ACTOR trains for UESTC (``src/recognition/models/stgcn.py``:
  ``data_bn``, ten ``st_gcn_networks`` blocks 64-64-64-64-128(s2)-128-128-256(s2)-256-256 with
  temporal kernel 9, spatial-configuration partitioning, learnable ``edge_importance``, ``fcn``
  1x1 conv); the features are the globally pooled 256-d activations.

Both take motions in the action dataset's representation ``[B, T, J, C]`` (``methods/base.py``:
xyz joints, C=3; ACTOR's UESTC model reads 6D rotations, C=6) and lengths ``[B]``, and return
``(logits [B, classes], features [B, F])``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

# SMPL kinematic tree (parent of each of the 24 joints), the graph ACTOR builds from kintree_table
SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
NTU_EDGES_1BASE = [(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
                   (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 23),
                   (23, 8), (24, 25), (25, 12)]


class MotionDiscriminatorA2M(nn.Module):
    """Action2Motion GRU recogniser; ``forward(x [B, T, J, 3], lengths) -> (logits, features [B, 30])``."""

    def __init__(self, input_size: int = 72, hidden_size: int = 128, hidden_layer: int = 2, output_size: int = 12,
                 random_h0: bool = True):
        super().__init__()
        self.input_size, self.hidden_size, self.hidden_layer = input_size, hidden_size, hidden_layer
        # official initHidden draws torch.randn every call (features are stochastic; protocols seed torch)
        self.random_h0 = random_h0
        self.recurrent = nn.GRU(input_size, hidden_size, hidden_layer)
        self.linear1 = nn.Linear(hidden_size, 30)
        self.linear2 = nn.Linear(30, output_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None,
                generator: torch.Generator | None = None):
        """``generator``: where the random initial state comes from (a CPU generator: drawn on the
        CPU, then moved, so CPU and GPU evaluations share it); ``None``: the global torch RNG on
        ``x``'s device, as the official ``initHidden``."""
        b, t = x.shape[:2]
        seq = x.reshape(b, t, -1).permute(1, 0, 2).float()  # [T, B, J*C] (time-major GRU)
        shape = (self.hidden_layer, b, self.hidden_size)
        if not self.random_h0:
            h0 = torch.zeros(shape, device=x.device)
        elif generator is None:
            h0 = torch.randn(shape, device=x.device)
        else:
            h0 = torch.randn(shape, generator=generator, device=generator.device).to(x.device)
        out, _ = self.recurrent(seq, h0)
        lengths = torch.full((b,), t, device=x.device) if lengths is None else torch.as_tensor(lengths, device=x.device)
        last = out[(lengths.long() - 1).clamp(0, t - 1), torch.arange(b, device=x.device)]  # last valid frame
        feats = torch.tanh(self.linear1(last))
        return self.linear2(feats), feats


class Graph:
    """ST-GCN graph with the spatial-configuration partition (ACTOR ``stgcnutils/graph.py``), max_hop 1."""

    def __init__(self, layout: str = "smpl", num_node: int | None = None, chains: list | None = None):
        if layout == "chains":  # a dataset's kinematic chains (lists of joint indices from the root)
            n = int(num_node or 1 + max(j for ch in chains for j in ch))
            edges = sorted({(ch[i + 1], ch[i]) for ch in chains for i in range(len(ch) - 1)})
            center = int(chains[0][0])
        elif layout == "smpl":
            n, edges, center = 24, [(j, p) for j, p in enumerate(SMPL_PARENTS) if p >= 0], 0
        elif layout == "smpl_noglobal":
            n = 23
            edges = [(j - 1, p - 1) for j, p in enumerate(SMPL_PARENTS) if p > 0]
            center = 0
        elif layout == "ntu-rgb+d":
            n, edges, center = 25, [(i - 1, j - 1) for i, j in NTU_EDGES_1BASE], 20
        elif layout == "chain":  # generic fallback: joints linked in index order (synthetic skeletons)
            n = int(num_node or 0)
            edges, center = [(i, i - 1) for i in range(1, n)], 0
        else:
            raise ValueError(f"unknown graph layout {layout!r} (smpl, smpl_noglobal, ntu-rgb+d, chains, chain)")
        self.num_node, self.center = n, center
        adj = np.eye(n)
        for i, j in edges:
            adj[i, j] = adj[j, i] = 1
        hop = np.full((n, n), np.inf)
        hop[np.eye(n) > 0] = 0
        hop[(adj > 0) & (np.eye(n) == 0)] = 1
        deg = adj.sum(0)
        norm = adj @ np.diag(np.where(deg > 0, 1.0 / np.maximum(deg, 1e-12), 0))  # normalize_digraph
        root, close, further = np.zeros((n, n)), np.zeros((n, n)), np.zeros((n, n))
        # distances to the centre along the graph (BFS), needed for the close/further split
        # as in the official code, the "distance to the centre" is hop_dis[:, center] computed with
        # max_hop = 1, i.e. inf beyond one hop (inf == inf counts as "same distance" -> root part)
        dist = hop[:, center]
        for i in range(n):
            for j in range(n):
                if hop[j, i] == 1:
                    if dist[j] == dist[i]:
                        root[j, i] = norm[j, i]
                    elif dist[j] > dist[i]:
                        close[j, i] = norm[j, i]
                    else:
                        further[j, i] = norm[j, i]
        self.A = np.stack([np.diag(np.diag(norm)), root + close, further]).astype(np.float32)


class ConvTemporalGraphical(nn.Module):
    """Graph convolution: 1x1 conv to ``K * out`` channels, then ``einsum`` with the K adjacency parts."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        self.kernel_size = kernel_size
        self.conv = nn.Conv2d(in_channels, out_channels * kernel_size, kernel_size=(1, 1))

    def forward(self, x: torch.Tensor, a: torch.Tensor):
        x = self.conv(x)
        n, kc, t, v = x.shape
        x = x.view(n, self.kernel_size, kc // self.kernel_size, t, v)
        return torch.einsum("nkctv,kvw->nctw", x, a).contiguous(), a


class STGCNBlock(nn.Module):
    """One ``st_gcn`` block: graph conv, BN-ReLU-temporal conv(9)-BN-Dropout, residual, ReLU."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, dropout: float = 0.0, residual: bool = True):
        super().__init__()
        self.gcn = ConvTemporalGraphical(cin, cout, k)
        self.tcn = nn.Sequential(nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                                 nn.Conv2d(cout, cout, (9, 1), (stride, 1), (4, 0)), nn.BatchNorm2d(cout),
                                 nn.Dropout(dropout))
        if not residual:
            self.residual = None
            self._res_kind = "zero"
        elif cin == cout and stride == 1:
            self.residual = None
            self._res_kind = "identity"
        else:
            self.residual = nn.Sequential(nn.Conv2d(cin, cout, 1, (stride, 1)), nn.BatchNorm2d(cout))
            self._res_kind = "conv"
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x, a):
        res = 0 if self._res_kind == "zero" else (x if self._res_kind == "identity" else self.residual(x))
        y, a = self.gcn(x, a)
        return self.relu(self.tcn(y) + res), a


class STGCN(nn.Module):
    """ACTOR's recogniser; ``forward(x [B, T, V, C], lengths=None) -> (logits, features [B, 256])``."""

    def __init__(self, in_channels: int = 3, num_class: int = 40, layout: str = "smpl", num_node: int | None = None,
                 edge_importance_weighting: bool = True, widths: tuple[int, ...] = (64, 64, 64, 64, 128, 128, 128,
                                                                                       256, 256, 256),
                 chains: list | None = None):
        super().__init__()
        graph = Graph(layout, num_node, chains)
        self.register_buffer("A", torch.tensor(graph.A))
        k = self.A.shape[0]
        self.data_bn = nn.BatchNorm1d(in_channels * self.A.shape[1])
        blocks, cin = [], in_channels
        for i, w in enumerate(widths):
            stride = 2 if i > 0 and w != widths[i - 1] else 1
            blocks.append(STGCNBlock(cin, w, k, stride, residual=i > 0))
            cin = w
        self.st_gcn_networks = nn.ModuleList(blocks)
        self.edge_importance = nn.ParameterList(
            [nn.Parameter(torch.ones(self.A.shape)) for _ in blocks]) if edge_importance_weighting else None
        self.fcn = nn.Conv2d(cin, num_class, kernel_size=1)

    def forward(self, x: torch.Tensor, lengths=None, generator: torch.Generator | None = None):
        # deterministic: ``generator`` is accepted for the recognisers' common call and unused
        # ACTOR feeds [N, C, T, V, M=1]; our motions are [B, T, V, C]
        x = x.float().permute(0, 3, 1, 2)  # [N, C, T, V]
        n, c, t, v = x.shape
        x = self.data_bn(x.permute(0, 3, 1, 2).reshape(n, v * c, t)).view(n, v, c, t).permute(0, 2, 3, 1)
        for i, blk in enumerate(self.st_gcn_networks):
            a = self.A * self.edge_importance[i] if self.edge_importance is not None else self.A
            x, _ = blk(x, a)
        feats = F.avg_pool2d(x, x.shape[2:]).view(n, -1)
        return self.fcn(feats[:, :, None, None]).view(n, -1), feats


def build_recognizer(kind: str, **kw) -> nn.Module:
    """``kind``: ``a2m_gru`` (HumanAct12) or ``stgcn`` (UESTC)."""
    if kind == "a2m_gru":
        return MotionDiscriminatorA2M(**kw)
    if kind == "stgcn":
        return STGCN(**kw)
    raise ValueError(f"unknown recognizer kind {kind!r} (a2m_gru, stgcn)")
