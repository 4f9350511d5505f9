"""oneDNN's packed linear gives ``torch.nn.functional.linear``'s values, and a pack follows its weight."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from methods.common import onednn_linear

pytestmark = pytest.mark.skipif(onednn_linear.unavailable() is not None,
                                reason=f"oneDNN linear unavailable: {onednn_linear.unavailable()}")


@pytest.mark.parametrize(("shape", "out"), [((1, 256), 768), ((6, 256), 768), ((4, 3, 263), 256), ((500, 64), 37)])
@pytest.mark.parametrize("bias", [True, False])
def test_packed_linear_gives_f_linear(shape, out, bias):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=g)
    w = torch.randn(out, shape[-1], generator=g) / shape[-1] ** 0.5
    b = torch.randn(out, generator=g) if bias else None
    ours = onednn_linear.PackedWeights(rows=8).linear(x, w, b)
    assert ours.shape == (*shape[:-1], out)
    torch.testing.assert_close(ours, F.linear(x, w, b), rtol=1e-5, atol=1e-5)


def test_a_row_slice_of_a_weight_packs_that_slice_once():
    w = torch.randn(96, 32)
    packs = onednn_linear.PackedWeights(rows=4)
    x = torch.randn(5, 32)
    top, bottom = packs.linear(x, w[:32], None), packs.linear(x, w[32:], None)
    torch.testing.assert_close(top, x @ w[:32].t(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bottom, x @ w[32:].t(), rtol=1e-5, atol=1e-5)
    assert packs.get(w[:32]) is packs.get(w[:32])  # a new view of the same rows: no repacking


def test_a_weight_written_in_place_is_packed_again():
    w, x = torch.randn(16, 8), torch.randn(3, 8)
    packs = onednn_linear.PackedWeights(rows=3)
    first = packs.get(w)
    with torch.no_grad():
        w.mul_(2.0)  # as an optimizer step or load_state_dict does
    assert packs.get(w) is not first
    torch.testing.assert_close(packs.linear(x, w, None), x @ w.t(), rtol=1e-5, atol=1e-5)


def test_a_new_tensor_never_takes_a_dead_tensors_pack(monkeypatch):
    # a freed tensor's id is reused by the next one of its size; force that on every tensor
    monkeypatch.setattr(onednn_linear, "id", lambda obj: 42, raising=False)
    packs = onednn_linear.PackedWeights(rows=3)
    x = torch.randn(3, 8)
    for scale in (1.0, -3.0, 0.5):  # same shape, strides and version: only the identity tells them apart
        w = torch.full((16, 8), scale)
        torch.testing.assert_close(packs.linear(x, w, None), x @ w.t(), rtol=1e-5, atol=1e-5)


def test_linear_mode_gives_autograds_values_and_gradients():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(24, 40), torch.nn.GELU(), torch.nn.Linear(40, 7, bias=False))
    x = torch.randn(5, 9, 24, requires_grad=True)
    ref = net(x).square().mean()
    ref_grads = torch.autograd.grad(ref, [x, *net.parameters()])
    with onednn_linear.LinearMode():
        ours = net(x).square().mean()
    grads = torch.autograd.grad(ours, [x, *net.parameters()])
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-6)


def test_linear_mode_routes_only_fp32_linear_and_runs_the_products_on_onednn():
    from torch.profiler import ProfilerActivity, profile

    lin, lin64 = torch.nn.Linear(8, 8), torch.nn.Linear(8, 8).double()
    x = torch.randn(4, 8, requires_grad=True)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        with onednn_linear.LinearMode():
            y = lin(x)
            z = lin64(x.double().detach())  # other dtypes: the usual path
        y.sum().backward()
    names = [e.name for e in prof.events()]
    assert names.count("mkldnn::_linear_pointwise") == 3  # forward, input and weight gradients
    assert "aten::addmm" in names and z.dtype == torch.float64
