"""``sampler.fused_encoder`` / ``sampler.onednn_linear``: the encoder stack on PyTorch's fused
encoder-layer kernel, or on oneDNN's products, agrees with the eager layers, falls back with one
warning, and leaves the default path alone.

The reference is the eager stack (SDPA layers, :class:`methods.momask.transformer.Encoder`); the
kernel sums attention in another order, so agreement is to 1e-5, on fixed seeds, not bit for bit.
"""

from __future__ import annotations

import logging

import pytest
import torch

from evaluators.core.config import load_config
from evaluators.core.validate import ConfigError, check_values
from methods import get_method
from methods.common import onednn_linear
from methods.momask import native_encoder
from methods.momask.transformer import Encoder


def _encoder() -> tuple[Encoder, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    enc = Encoder(48, 4, 96, 0.2, 3).eval()
    x = torch.randn(3, 11, 48)
    keep = torch.ones(3, 11, dtype=torch.bool)
    keep[1, 7:] = False  # a padded sample: its padded keys are masked out
    return enc, x, keep


def test_fused_layers_agree_with_the_eager_stack_on_real_positions():
    enc, x, keep = _encoder()
    with torch.inference_mode():
        want = enc.eager(x, keep)
        got = native_encoder.fused_forward(enc, x, keep)
        torch.testing.assert_close(got[keep], want[keep], rtol=1e-5, atol=1e-5)
        full = torch.ones_like(keep)
        torch.testing.assert_close(native_encoder.fused_forward(enc, x, full), enc.eager(x, full),
                                   rtol=1e-5, atol=1e-5)


def test_onednn_layers_agree_with_the_eager_stack_on_every_position():
    enc, x, keep = _encoder()
    with torch.inference_mode():
        want = enc.eager(x, keep)
        got = native_encoder.onednn_forward(enc, x, keep)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)  # the same masked SDPA: padded rows too
        assert not torch.equal(got, native_encoder.fused_forward(enc, x, keep))  # the oneDNN path ran, not the kernel
        with torch.no_grad():
            for p in enc.parameters():
                p.mul_(0.9)  # new weights (as after training): the packs must follow
        torch.testing.assert_close(native_encoder.onednn_forward(enc, x, keep), enc.eager(x, keep),
                                   rtol=1e-5, atol=1e-5)


def test_onednn_missing_runs_the_encoder_eagerly_with_one_warning(caplog, monkeypatch):
    enc, x, keep = _encoder()
    enc.onednn = True
    monkeypatch.setattr(native_encoder, "_warned", set())
    monkeypatch.setattr(onednn_linear, "unavailable", lambda: "no oneDNN in this build")
    with caplog.at_level(logging.WARNING, logger=native_encoder.__name__), torch.inference_mode():
        for _ in range(2):
            assert torch.equal(enc(x, keep), enc.eager(x, keep))
    assert [r.getMessage() for r in caplog.records] == [
        "sampler.onednn_linear: no oneDNN in this build; running the encoder eagerly"]


def test_where_the_kernel_does_not_apply_it_runs_eagerly_with_one_warning(caplog, monkeypatch):
    enc, x, keep = _encoder()
    enc.fused = True
    monkeypatch.setattr(native_encoder, "_warned", set())
    with caplog.at_level(logging.WARNING, logger=native_encoder.__name__):
        with torch.no_grad():
            enc.bfloat16()  # bf16 weights: not this kernel's case
            for _ in range(2):
                assert torch.equal(enc(x.bfloat16(), keep), enc.eager(x.bfloat16(), keep))
            enc.float()

            def broken(*a, **k):
                raise RuntimeError("no kernel here")

            monkeypatch.setattr(torch, "_transformer_encoder_layer_fwd", broken)
            for _ in range(2):
                assert torch.equal(enc(x, keep), enc.eager(x, keep))
        enc.train()  # training: dropout and autograd, the eager layers (reason warned once)
        torch.manual_seed(1)
        a = enc(x, keep)
        torch.manual_seed(1)
        assert torch.equal(a, enc.eager(x, keep))
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 3, warnings  # one per reason: bf16, the failing kernel, training
    assert any("no kernel here" in w for w in warnings)


def _smoke(fast: bool, switch: str = "fused_encoder"):
    cfg = load_config("method", "momask", "smoke", ["render.n=0", f"sampler.{switch}={str(fast).lower()}"])
    return get_method("momask")(cfg, seed=0)


@pytest.mark.parametrize(("switch", "flag"), [("fused_encoder", "fused"), ("onednn_linear", "onednn")])
def test_generate_with_a_fast_encoder_matches_the_eager_default_on_fixed_seeds(switch, flag):
    eager, fast = _smoke(False, switch), _smoke(True, switch)
    fast.load_state_dict(eager.state_dict())
    caps, lens = ["a person walks forward", "someone jumps twice"], [40, 28]
    torch.manual_seed(5)
    want = eager.generate(caps, lens)
    torch.manual_seed(5)
    got = fast.generate(caps, lens)
    encoders = [m for t in (fast.mtrans, fast.rtrans) for m in t.modules() if isinstance(m, Encoder)]
    assert len(encoders) == 2 and all(getattr(m, flag) for m in encoders)
    assert all(not getattr(m, flag) for m in eager.mtrans.modules() if isinstance(m, Encoder))  # default: untouched
    if switch == "onednn_linear":
        assert all("_onednn_packs" in m.__dict__ for m in encoders)
    assert torch.equal(fast.last_generation_codes(), eager.last_generation_codes())
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert fast.sampler_settings()[switch] is True
    assert switch not in eager.sampler_settings()  # default records keep their exact content


@pytest.mark.parametrize("switch", ["fused_encoder", "onednn_linear"])
@pytest.mark.parametrize("bad", [1, "yes"])
def test_fused_encoder_must_be_a_bool(bad, switch):
    cfg = load_config("method", "momask", "smoke")
    cfg["sampler"][switch] = bad
    with pytest.raises(ConfigError, match=switch):
        check_values(cfg, "method_cfg")
