"""Classifier used by the fine-tune and semi-supervised protocols.

Official ``model/transformer_downstream.py`` (protocol ``finetune``): the pretrained encoder run
on all 750 tokens (no masking) with stochastic depth, then ``ActionHeadFinetune``:
dropout 0.3 on the token features ``[N, M, TP, VP, D]`` -> mean over time -> flatten joints
(``VP*D`` = 6400) -> mean over persons -> FC 2048 -> BatchNorm1d -> ReLU -> FC classes.

Layer-wise lr decay (MAMP ``util/lr_decay.py::get_layer_id_for_vit``): ``temp_embed``,
``pos_embed`` and ``joints_embed`` are layer 0, ``blocks.i`` is layer ``i + 1`` and everything
else (final norm, head) is layer ``num_layers = depth + 1``; the protocol scales each layer's lr by
``decay ** (num_layers - layer_id)``. Names below are relative to ``encoder.``.
"""

from __future__ import annotations

import torch
from torch import nn

from methods.macdiff.model import MacDiffEncoder


class FinetuneHead(nn.Module):
    """``[N, M, TP, VP, D] -> [N, classes]`` (official ``ActionHeadFinetune``; same key names)."""

    def __init__(self, dim_feat: int, num_joints: int, num_classes: int, hidden: int = 2048, dropout: float = 0.3):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc1 = nn.Linear(dim_feat * num_joints, hidden)
        self.bn = nn.BatchNorm1d(hidden, momentum=0.1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        n, m, t, j, c = feat.shape
        feat = self.dropout(feat).mean(dim=2).reshape(n, m, j * c).mean(dim=1)
        return self.fc2(self.relu(self.bn(self.fc1(feat))))


class MacDiffClassifier(nn.Module):
    """Raw skeletons ``[N, 3, T, V, M]`` -> logits ``[N, classes]`` (normalises internally)."""

    def __init__(self, model_cfg: dict, num_classes: int, drop_path: float = 0.3, head_dropout: float = 0.3,
                 mean: torch.Tensor | None = None, std: torch.Tensor | None = None, self_shift: bool = False) -> None:
        super().__init__()
        self.encoder = MacDiffEncoder(**{**model_cfg, "drop_path": drop_path})
        self.head = FinetuneHead(self.encoder.dim_feat, self.encoder.vp, num_classes, dropout=head_dropout)
        for m in self.head.modules():  # official _init_weights: xavier-uniform linears, zero bias
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        self.register_buffer("mean", (mean if mean is not None else torch.zeros(3)).clone().float(), persistent=False)
        self.register_buffer("std", (std if std is not None else torch.ones(3)).clone().float(), persistent=False)
        self.num_layers = len(self.encoder.blocks) + 1
        self.self_shift = self_shift

    def layer_id(self, name: str) -> int:
        """Layer index of parameter ``name`` for layer-wise lr decay (see module docstring)."""
        if name.startswith("encoder."):
            sub = name[len("encoder."):]
            if sub in ("temp_embed", "pos_embed") or sub.startswith("joints_embed"):
                return 0
            if sub.startswith("blocks."):
                return int(sub.split(".")[1]) + 1
        return self.num_layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v, m = x.shape
        rows = x.permute(0, 4, 2, 3, 1).reshape(n * m, t, v, c)
        if self.self_shift:  # official downstream model: per-row mean over (T, V) removed
            rows = rows - rows.mean(dim=(1, 2), keepdim=True)
        feat = self.encoder((rows - self.mean) / self.std)  # [N*M, TP, VP, D]
        return self.head(feat.reshape(n, m, *feat.shape[1:]))
