"""text2motion's debug check on generated RVQ codes: a method that exposes
``last_generation_codes()`` gets its distinct codes per layer recorded in ``extra``, and a layer
that collapsed onto one code (the old Gumbel bug: every residual code 0) stops the run."""

from __future__ import annotations

import pytest
import torch

from evaluators.networks.t2m_train import train_evaluator
from evaluators.protocols import RunContext, get_protocol
from tests.networks._tiny import TINY_EVAL_CFG, TinyT2M
from tests.protocols.test_protocol_text2motion import RetrievalGenerator

CFG = {"repetitions": 1, "mm": {"enabled": False}, "aits": {"enabled": False}, "diversity_times": 20,
       "real_row": False}


class CodeGenerator(RetrievalGenerator):
    """Also reports RVQ codes ``[B, N, 3]`` of its last call; ``collapse`` = layer 1 all code 0."""

    def __init__(self, data, collapse: bool):
        super().__init__(data, 0.05)
        self.collapse, self.g = collapse, torch.Generator().manual_seed(0)

    def generate(self, conditions, lengths, steps=None):
        out = super().generate(conditions, lengths, steps)
        n = max(lengths) // 4
        ids = torch.randint(0, 16, (len(lengths), n, 3), generator=self.g)
        if self.collapse:
            ids[..., 1] = 0
        ids[torch.arange(n)[None] >= torch.tensor(lengths)[:, None] // 4] = -1
        self._codes = ids
        return out

    def last_generation_codes(self):
        return self._codes


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    data = TinyT2M(n=40, k=8, seed=1)
    ev = train_evaluator(data, steps=10, lr=1e-3, config_overrides={**TINY_EVAL_CFG, "max_motion_length": 64},
                         seed=0, cache=False)
    return data, ev


def test_diverse_codes_are_recorded(tiny):
    data, ev = tiny
    res = get_protocol("text2motion").fn(CodeGenerator(data, False), data, CFG, RunContext(seed=0, extra={"t2m_evaluator": ev}))
    summary = res[0].extra["generation_codes"]
    assert len(summary["distinct_codes_per_layer"]) == 3 and min(summary["distinct_codes_per_layer"]) > 1
    assert summary["tokens"] > 0


def test_collapsed_residual_layer_stops_the_run_or_warns(tiny):
    data, ev = tiny
    ctx = RunContext(seed=0, extra={"t2m_evaluator": ev})
    with pytest.raises(RuntimeError, match=r"layer\(s\) \[1\] used a single code"):
        get_protocol("text2motion").fn(CodeGenerator(data, True), data, CFG, ctx)
    res = get_protocol("text2motion").fn(CodeGenerator(data, True), data,
                                         {**CFG, "debug_checks": {"residual_codes": "warn"}}, ctx)
    assert res[0].extra["generation_codes"]["distinct_codes_per_layer"][1] == 1


def test_methods_without_codes_are_untouched(tiny):
    data, ev = tiny
    res = get_protocol("text2motion").fn(RetrievalGenerator(data, 0.05), data, CFG, RunContext(seed=0, extra={"t2m_evaluator": ev}))
    assert "generation_codes" not in res[0].extra
