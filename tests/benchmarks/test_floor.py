"""The floor of a side-by-side workload (benchmarks/floor.py) and the rule that keeps a quiet timing.

The products a call launches are checked against what autograd must do for a known model (each
``nn.Linear`` of a trained stack: one forward matmul, one for the weight's gradient and one for
the input's; a convolution: its forward and one backward), and the replay is checked by profiling
it: it must launch the very products it was built from, on the model's own weights.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from benchmarks import floor as fl
from benchmarks.alternate import keep_quiet_timing, write_side_by_side
from benchmarks.profiling import top_ops
from methods.common import onednn_linear


def _net() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv1d(8, 16, 3, padding=1), nn.Flatten(), nn.Linear(16 * 30, 64), nn.GELU(),
                        nn.Linear(64, 10))
    return net, torch.randn(4, 8, 30)


def test_a_training_step_launches_the_products_autograd_must():
    net, x = _net()

    def step():
        net.zero_grad()
        net(x).sum().backward()

    products = fl.record_products(step)
    assert fl.summary(products) == {"addmm": 2, "mm": 4, "convolution": 1, "convolution_backward": 1}
    forward = [p for p in products if p.op == "aten::addmm"]
    # x @ W.t() + b at 4 rows: (bias [out], input [4, in], W.t() [in, out])
    assert [p.shapes[:3] for p in forward] == [((64,), (4, 480), (480, 64)), ((10,), (4, 64), (64, 10))]


def test_the_replay_launches_the_same_products_and_nothing_else():
    net, x = _net()

    def step():
        net.zero_grad()
        net(x).sum().backward()

    products = fl.record_products(step)
    run = fl.replay(products, [net])
    assert run.replayed == len(products)
    assert fl.record_products(run) == products
    prof = top_ops(run, top=50)
    assert {o["op"] for o in prof["top_ops"]} & {"aten::gelu", "aten::gelu_backward", "aten::sum"} == set()


@pytest.mark.skipif(onednn_linear.unavailable() is not None, reason="oneDNN linear unavailable in this torch")
def test_onednn_packed_products_are_recorded_and_replayed_as_such():
    torch.manual_seed(0)
    a, b = nn.Linear(32, 48), nn.Linear(48, 8, bias=False)
    packs, x = onednn_linear.PackedWeights(rows=6), torch.randn(2, 3, 32)

    def forward():
        with torch.inference_mode():
            return packs.linear(torch.relu(packs.linear(x, a.weight, a.bias)), b.weight, None)

    products = fl.record_products(forward)
    assert fl.summary(products) == {"mkldnn::_linear_pointwise": 2}
    assert [p.shapes[:2] for p in products] == [((2, 3, 32), (48, 32)), ((2, 3, 48), (8, 48))]
    run = fl.replay(products, [a, b])
    assert run.replayed == 2 and fl.record_products(run) == products
    assert {o["op"] for o in top_ops(run, top=50)["top_ops"]} & {"aten::relu", "aten::addmm"} == set()


def test_weights_are_the_models_own_cycled_or_the_first_when_hot():
    a, b = nn.Linear(32, 32, bias=False), nn.Linear(32, 32, bias=False)
    cold = fl._Operands([nn.Sequential(a, b)], hot=False)
    got = [cold.weight((32, 32)) for _ in range(3)]
    assert [w.data_ptr() for w in got] == [a.weight.data_ptr(), b.weight.data_ptr(), a.weight.data_ptr()]
    hot = fl._Operands([nn.Sequential(a, b)], hot=True)
    assert {hot.weight((32, 32)).data_ptr() for _ in range(3)} == {a.weight.data_ptr()}
    wide = nn.Linear(16, 48)
    t = fl._Operands([wide], hot=False).weight((16, 48))  # mat2 of x @ W.t(): the weight, transposed
    assert t.data_ptr() == wide.weight.data_ptr() and t.shape == (16, 48)
    assert fl._Operands([wide], hot=False).weight((7, 7)) is None


def test_measure_reports_the_floor_beside_both_sides():
    net, x = _net()

    def call():
        with torch.no_grad():
            net(x)

    out = fl.measure({"official": call, "suite": call}, record=call, modules=[net], repeats=3)
    assert out["products"] == {"addmm": 2, "convolution": 1} and out["replayed"] == 3
    assert out["best_possible_ratio"] == pytest.approx(out["official_s"] / out["floor_s"])
    assert out["suite_over_floor"] == pytest.approx(out["suite_s"] / out["floor_s"])


QUIET = {"workload": "w", "ratio": 1.13, "official_s": 13.5, "suite_s": 12.0, "distorted": False,
         "cpu_over_wall": 1.0, "commit": "aaa", "date": "2026-12-06T06:00:00Z"}
LOADED = {"workload": "w", "ratio": 1.4, "official_s": 30.0, "suite_s": 21.0, "distorted": True,
          "cpu_over_wall": 0.4, "commit": "bbb", "date": "2026-12-06T12:00:00Z",
          "profile": {"suite": {}}, "floor": {"floor_s": 1.0}}


def test_a_distorted_run_adds_its_evidence_but_keeps_the_quiet_timing(tmp_path):
    kept = keep_quiet_timing(QUIET, LOADED)
    assert {k: kept[k] for k in QUIET} == QUIET
    assert kept["profile"] == LOADED["profile"] and kept["floor"] == LOADED["floor"]
    assert kept["evidence_run"] == {"commit": "bbb", "date": "2026-12-06T12:00:00Z", "cpu_over_wall": 0.4,
                                    "ratio": 1.4}
    # a quiet run replaces anything; a distorted run replaces a distorted file or none
    assert keep_quiet_timing(LOADED, QUIET) == QUIET
    assert keep_quiet_timing({**QUIET, "distorted": True}, LOADED) == LOADED
    assert keep_quiet_timing(None, LOADED) == LOADED
    path = tmp_path / "w.json"
    path.write_text(json.dumps(QUIET))
    assert write_side_by_side(path, LOADED) == json.loads(path.read_text()) == kept
