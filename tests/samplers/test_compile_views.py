"""``compile: true`` of MacDiff's and DiffusionPose's samplers (compiled and eager
outputs agree to 1e-5 on the same seed; a failed compilation falls back to eager).

MLD's and MoMask/HGM3's switches are tested in ``tests/mld/test_precision.py`` and
``tests/samplers/test_fused_token_decoding.py``. The compiled-vs-eager comparisons run inductor
(tens of seconds each on a CPU), so they are marked slow; the fallback and the plumbing are fast.
"""

from __future__ import annotations

import logging

import pytest
import torch

from evaluators.core.config import load_config
from evaluators.core.validate import ConfigError, check_values
from methods import get_method
from methods.common import compile as C
from methods.common.compile import CompiledModule


def _macdiff(compile_: bool):
    cfg = load_config("method", "macdiff", "smoke")
    cfg["sampling"] = {**cfg["sampling"], "compile": compile_}
    return get_method("macdiff")(cfg, seed=0)


def _pose(compile_: bool):
    cfg = load_config("method", "diffusionpose", "smoke")
    cfg["compile"] = compile_
    m = get_method("diffusionpose")(cfg, seed=0)
    m.net.eval()
    return m


def _clip(m):
    return torch.randn(1, 3, m.window, m.core.encoder.num_joints, 2, generator=torch.Generator().manual_seed(0))


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_compile_switch_is_recorded_and_wraps_only_the_step_networks():
    off, on = _macdiff(False), _macdiff(True)
    assert off._sampling_core() is off.core and off.sampler_settings()["compile"] is False
    core = on._sampling_core()
    assert isinstance(core.decoder, CompiledModule) and core.decoder.inner is on.core.decoder
    assert core.encoder is on.core.encoder and on.core.decoder is not core.decoder  # the model itself untouched
    assert on._sampling_core().decoder is core.decoder and on.sampler_settings()["compile"] is True  # cached
    p = _pose(True)
    net = p._sampling_net()
    assert isinstance(net.decoder, CompiledModule) and isinstance(net.condition, CompiledModule)
    assert net.backbone is p.net.backbone and p.sampler_settings()["compile"] is True


def test_failed_compilation_falls_back_to_eager_with_one_warning(monkeypatch, caplog):
    def broken_compile(fn, **kw):
        def run(*a, **k):
            raise RuntimeError("no C++ compiler")
        return run

    monkeypatch.setattr(C.torch, "compile", broken_compile)
    eager, comp = _macdiff(False), _macdiff(True)
    x = _clip(eager)
    torch.manual_seed(1)
    ref = eager.reconstruct(x, steps=2)
    with caplog.at_level(logging.WARNING, logger=C.__name__):
        torch.manual_seed(1)
        out = comp.reconstruct(x, steps=2)
        torch.manual_seed(1)
        again = comp.reconstruct(x, steps=2)
    assert torch.equal(ref, out) and torch.equal(ref, again)
    assert sum("torch.compile failed" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("bad", ["yes", 1, "abc"])
def test_compile_must_be_a_boolean(bad):
    with pytest.raises(ConfigError, match="sampling.compile"):
        check_values({"sampling": {"compile": bad}}, "method_cfg")


@pytest.mark.slow
def test_macdiff_compiled_reconstruction_equals_eager():
    eager, comp = _macdiff(False), _macdiff(True)
    x = _clip(eager)
    for kw in ({"steps": 2}, {"steps": 2, "guidance": 2.0}):  # plain and CFG
        torch.manual_seed(3)
        ref = eager.reconstruct(x, **kw)
        torch.manual_seed(3)
        out = comp.reconstruct(x, **kw)
        assert torch.allclose(ref, out, rtol=1e-5, atol=1e-5), (kw, float((ref - out).abs().max()))
    assert comp._sampling_core().decoder._call.compiled is not None  # it really ran compiled


@pytest.mark.slow
def test_diffusionpose_compiled_reverse_step_equals_eager():
    eager, comp = _pose(False), _pose(True)
    x = torch.randn(1, 3, eager.input_size[1], eager.input_size[0], generator=torch.Generator().manual_seed(0))
    w, h = eager.heatmap_size
    y = torch.rand(1, eager.num_keypoints, 2, generator=torch.Generator().manual_seed(1)) * torch.tensor([w - 1.0, h - 1.0])
    t = torch.full((1,), 500, dtype=torch.long)
    with torch.inference_mode():
        fea, _ = eager.net.features(x)
        ref = eager._sampling_net().denoise(fea, y, t)
        out = comp._sampling_net().denoise(fea, y, t)
    assert torch.allclose(ref, out, rtol=1e-5, atol=1e-5), float((ref - out).abs().max())
    assert comp._sampling_net().decoder._call.compiled is not None
