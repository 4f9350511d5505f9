"""RVQ tokenizer: EMA/reset quantizer against hand computation, dropout, 6 layers beat 1."""

from __future__ import annotations

import random

import pytest
import torch

from methods.momask.data import MotionWindows, text_motion_split
from methods.momask.quantizer import EMAResetQuantizer, ResidualVQ
from methods.momask.tokenizer import RVQVAE, tokenizer_losses
from tests.momask.synthdata import TinyT2M


def test_ema_update_and_dead_code_reset_by_hand():
    q = EMAResetQuantizer(nb_code=3, code_dim=2, mu=0.9)
    q.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0], [-5.0, 5.0]]))
    q.code_sum.copy_(q.codebook)
    q.code_count.fill_(1.0)
    q.initted.fill_(True)
    x = torch.tensor([[0.1, 0.0], [0.3, 0.0], [9.0, 10.0], [10.0, 9.0]])  # code 2 unused
    q.eval()
    idx = q.nearest(x)
    assert idx.tolist() == [0, 0, 1, 1]
    torch.manual_seed(0)
    q._ema_update(x, idx)
    # code 0: sum 0.9*[0,0] + 0.1*[0.4,0] ; count 0.9 + 0.2 = 1.1 -> used
    torch.testing.assert_close(q.code_sum[0], torch.tensor([0.04, 0.0]))
    torch.testing.assert_close(q.code_count, torch.tensor([1.1, 1.1, 0.9]))
    torch.testing.assert_close(q.codebook[0], torch.tensor([0.04, 0.0]) / 1.1)
    torch.testing.assert_close(q.codebook[1], (0.9 * torch.tensor([10.0, 10.0]) + 0.1 * torch.tensor([19.0, 19.0])) / 1.1)
    # code 2's count fell below 1 -> replaced by (a noisy copy of) a batch vector
    assert torch.cdist(q.codebook[2:3], x).min() < 0.05


def test_quantizer_dropout_keeps_a_prefix_of_layers():
    rvq = ResidualVQ(num_quantizers=6, nb_code=8, code_dim=4, quantize_dropout_prob=1.0)
    rvq.train()
    random.seed(3)
    seen = set()
    for _ in range(30):
        _, idx, _, _ = rvq(torch.randn(2, 4, 5))
        kept = (idx[0, 0] >= 0).tolist()
        n = sum(kept)
        assert kept == [True] * n + [False] * (6 - n) and n >= 1
        seen.add(n)
    assert len(seen) >= 4  # random cut-off in [1, 6]


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_six_quantizer_layers_reconstruct_clearly_better_than_one():
    torch.manual_seed(0)
    random.seed(0)
    data = text_motion_split(TinyT2M(n_train=48, n_test=16))
    win = MotionWindows(data, 16)
    vq = RVQVAE(263, nb_code=32, code_dim=16, down_t=2, width=64, depth=1, num_quantizers=6)
    opt = torch.optim.AdamW(vq.parameters(), lr=3e-3, betas=(0.9, 0.99))
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        idx = torch.randint(len(win), (32,), generator=g)
        batch = torch.stack([win[int(i)] for i in idx])
        loss, _ = tokenizer_losses(vq, batch, joints_num=22)
        opt.zero_grad()
        loss.backward()
        opt.step()
    vq.eval()
    torch.set_grad_enabled(False)
    test = torch.stack([win[i] for i in range(0, len(win), max(1, len(win) // 64))])
    err = {}
    for nq in (1, 6):
        rec = vq.decode(vq.encode(test, num_layers=nq))
        err[nq] = float((rec - test).abs().mean())
    torch.set_grad_enabled(True)
    assert err[6] < 0.85 * err[1], err
