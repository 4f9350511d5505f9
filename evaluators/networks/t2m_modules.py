"""The text-motion matching networks of Guo et al. (CVPR 2022), with the official parameter names.

Reimplemented from ``EricGuo5513/text-to-motion`` ``networks/modules.py`` so that a state dict
saved by the official code (``text_mot_match/model/finest.tar``: ``text_encoder``,
``movement_encoder``, ``motion_encoder``) loads with ``strict=True``:

- :class:`TextEncoderBiGRUCo`: ``pos_emb`` (15 -> 300), ``input_emb`` (300 -> 512),
  bidirectional ``gru`` (512), learned initial state ``hidden [2, 1, 512]``, ``output_net``
  (Linear 1024->512, LayerNorm, LeakyReLU 0.2, Linear 512->512).
- :class:`MovementConvEncoder`: ``main`` = Conv1d(k4, s2, p1) -> Dropout 0.2 -> LeakyReLU 0.2,
  twice (4x temporal downsampling), then ``out_net`` Linear.
- :class:`MotionEncoderBiGRUCo`: ``input_emb`` (512 -> 1024), bidirectional ``gru`` (1024),
  ``hidden [2, 1, 1024]``, ``output_net`` (2048 -> 1024 -> LN -> LeakyReLU -> 512).
- :class:`MovementConvDecoder`: the transposed-conv decoder used to pretrain the movement
  encoder as an autoencoder (official ``train_decomp_v3.py``).

Difference from the official forward: sequences are packed with ``enforce_sorted=False``, so
callers need not sort the batch by length (the official wrapper sorts and un-sorts; the
result is identical).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence


def init_weight(m: nn.Module) -> None:
    """Xavier-normal weights and zero biases for Linear / Conv1d / ConvTranspose1d (official init)."""
    if isinstance(m, (nn.Conv1d, nn.Linear, nn.ConvTranspose1d)):
        nn.init.xavier_normal_(m.weight)
        if m.bias is not None:
            nn.init.constant_(m.bias, 0)


def _head(in_size: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_size, hidden), nn.LayerNorm(hidden), nn.LeakyReLU(0.2, inplace=True),
                         nn.Linear(hidden, out))


def _last_state(gru: nn.GRU, h0: nn.Parameter, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Concatenated final forward/backward GRU states ``[B, 2H]`` of the packed sequences."""
    lengths = lengths.detach().to("cpu", torch.int64).clamp(min=1)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    hidden = h0.repeat(1, x.shape[0], 1).contiguous()
    _, last = gru(packed, hidden)  # unsorted back to input order by torch
    return torch.cat([last[0], last[1]], dim=-1)


class TextEncoderBiGRUCo(nn.Module):
    """Word vectors ``[B, L, 300]`` + POS one-hots ``[B, L, 15]`` + lengths ``[B]`` -> ``[B, 512]``."""

    def __init__(self, word_size: int = 300, pos_size: int = 15, hidden_size: int = 512, output_size: int = 512):
        super().__init__()
        self.pos_emb = nn.Linear(pos_size, word_size)
        self.input_emb = nn.Linear(word_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.output_net = _head(hidden_size * 2, hidden_size, output_size)
        for m in (self.input_emb, self.pos_emb, self.output_net):
            m.apply(init_weight)
        self.hidden_size = hidden_size
        self.hidden = nn.Parameter(torch.randn((2, 1, hidden_size)))

    def forward(self, word_embs: torch.Tensor, pos_onehot: torch.Tensor, cap_lens: torch.Tensor) -> torch.Tensor:
        inputs = self.input_emb(word_embs + self.pos_emb(pos_onehot))
        return self.output_net(_last_state(self.gru, self.hidden, inputs, cap_lens))


class MovementConvEncoder(nn.Module):
    """Motion features ``[B, T, D-4]`` -> movement tokens ``[B, T/4, 512]``."""

    def __init__(self, input_size: int, hidden_size: int = 512, output_size: int = 512):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv1d(input_size, hidden_size, 4, 2, 1), nn.Dropout(0.2), nn.LeakyReLU(0.2),
            nn.Conv1d(hidden_size, output_size, 4, 2, 1), nn.Dropout(0.2), nn.LeakyReLU(0.2),
        )
        self.out_net = nn.Linear(output_size, output_size)
        self.main.apply(init_weight)
        self.out_net.apply(init_weight)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.out_net(self.main(inputs.permute(0, 2, 1)).permute(0, 2, 1))


class MovementConvDecoder(nn.Module):
    """Movement tokens ``[B, T/4, 512]`` -> motion features ``[B, T, D-4]`` (AE pretraining only)."""

    def __init__(self, input_size: int = 512, hidden_size: int = 512, output_size: int = 259):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose1d(input_size, hidden_size, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.ConvTranspose1d(hidden_size, output_size, 4, 2, 1), nn.LeakyReLU(0.2),
        )
        self.out_net = nn.Linear(output_size, output_size)
        self.main.apply(init_weight)
        self.out_net.apply(init_weight)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.out_net(self.main(inputs.permute(0, 2, 1)).permute(0, 2, 1))


class MotionEncoderBiGRUCo(nn.Module):
    """Movement tokens ``[B, T', 512]`` + token counts ``[B]`` -> motion embedding ``[B, 512]``."""

    def __init__(self, input_size: int = 512, hidden_size: int = 1024, output_size: int = 512):
        super().__init__()
        self.input_emb = nn.Linear(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.output_net = _head(hidden_size * 2, hidden_size, output_size)
        self.input_emb.apply(init_weight)
        self.output_net.apply(init_weight)
        self.hidden_size = hidden_size
        self.hidden = nn.Parameter(torch.randn((2, 1, hidden_size)))

    def forward(self, inputs: torch.Tensor, m_lens: torch.Tensor) -> torch.Tensor:
        return self.output_net(_last_state(self.gru, self.hidden, self.input_emb(inputs), m_lens))


class ContrastiveLoss(nn.Module):
    """Hadsell et al. margin loss as in the official trainer: label 0 = matching pair, 1 = negative.

    ``mean((1-y) d^2 + y * max(margin - d, 0)^2)``; the matching trainer uses margin 10.
    """

    def __init__(self, margin: float = 10.0):
        super().__init__()
        self.margin = margin

    def forward(self, a: torch.Tensor, b: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        d = nn.functional.pairwise_distance(a, b, keepdim=True)
        label = label.view(-1, 1)
        return torch.mean((1 - label) * d.pow(2) + label * torch.clamp(self.margin - d, min=0.0).pow(2))
