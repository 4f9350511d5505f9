"""HGM3 with both contributions off is MoMask; the hierarchy gives three nested condition levels."""

from __future__ import annotations

import pytest
import torch

from methods.hgm3.gat import N_NODES
from methods.hgm3.method import HGM3
from methods.momask.method import MoMask
from tests.momask.configs import paper_cfg

TINY = {"text_encoder": {"kind": "minilm", "dim": 384},
        "tokenizer": {"nb_code": 16, "code_dim": 8, "width": 16, "depth": 1, "num_quantizers": 3},
        "mask_transformer": {"latent_dim": 16, "ff_size": 32, "num_layers": 1, "num_heads": 2},
        "residual_transformer": {"latent_dim": 16, "ff_size": 32, "num_layers": 1, "num_heads": 2},
        "htm": {"predictor": {"latent_dim": 16, "ff_size": 32, "num_layers": 1, "num_heads": 2}}}
CAPS = ["a person walks forward and then turns left.", "someone slowly crouches down"]


def test_hgm3_with_both_switches_off_is_momask():
    torch.manual_seed(0)
    a = MoMask(paper_cfg("momask", TINY))
    torch.manual_seed(0)
    b = HGM3(paper_cfg("hgm3", {**TINY, "htm": {"enabled": False}, "hierarchy": {"enabled": False}}))
    assert set(b.components()) == set(a.components())
    for name, mod in a.components().items():
        for (k, v), (k2, v2) in zip(mod.state_dict().items(), b.components()[name].state_dict().items()):
            assert k == k2 and torch.equal(v, v2), (name, k)
    ids, pad = torch.randint(0, 16, (2, 6)), torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    losses = []
    for m in (a, b):
        m.mtrans.train()
        torch.manual_seed(5)
        losses.append(m.mask_loss(ids, pad, CAPS, 0)[0])
    torch.testing.assert_close(losses[0], losses[1])
    outs = []
    for m in (a, b):
        torch.manual_seed(7)
        outs.append(m.generate(CAPS, [24, 16], steps=3))
    torch.testing.assert_close(outs[0], outs[1])
    assert outs[0].shape == (2, 24, 263) and float(outs[0][1, 16:].abs().sum()) == 0.0


def test_hierarchical_levels_are_nested_and_padded():
    m = HGM3(paper_cfg("hgm3", TINY))
    levels = m.conditions(CAPS)
    assert len(levels) == 3
    keep = [(~p) for _, p in levels]
    for (c, p) in levels:
        assert c.shape == (2, N_NODES, 384) and p.shape == (2, N_NODES)
        assert float(c[p].detach().abs().sum()) == 0.0
    assert keep[0].sum(1).tolist() == [1, 1]  # C^m only
    assert keep[1].sum(1).tolist() == [3, 2]  # + 2 actions / 1 action
    assert keep[2].sum(1).tolist() == [7, 4]  # + 4 / 2 specifics
    assert bool((keep[0] <= keep[1]).all() and (keep[1] <= keep[2]).all())
    assert [m.level_at(k, 10, 3) for k in range(10)] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 2]
    assert [m.level_at(k, 1, 3) for k in range(1)] == [2] and [m.level_at(k, 2, 3) for k in range(2)] == [1, 2]
    loss, logs = m.mask_loss(torch.randint(0, 16, (2, 6)), torch.zeros(2, 6, dtype=torch.bool), CAPS, 0)
    assert {"ce0", "ce1", "ce2", "rank", "alpha"} <= set(logs) and torch.isfinite(loss)
    loss.backward()
    assert m.gat.W.weight.grad is not None and m.lpred.head[0].weight.grad is not None


@pytest.mark.parametrize("name", ["momask", "hgm3"])
def test_checkpoint_round_trip(tmp_path, name):
    cls = {"momask": MoMask, "hgm3": HGM3}[name]
    torch.manual_seed(0)
    a = cls(paper_cfg(name, TINY))
    a.mean, a.std = torch.full((263,), 0.5), torch.full((263,), 2.0)
    path = a.save_checkpoint(tmp_path / "method.pt")
    torch.manual_seed(1)
    b = cls(paper_cfg(name, TINY))
    b.load_checkpoint(path)
    x = torch.randn(1, 16, 263)
    torch.testing.assert_close(a.reconstruct(x), b.reconstruct(x))
    assert float(b.std[0]) == 2.0
