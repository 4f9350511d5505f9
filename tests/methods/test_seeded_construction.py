"""A method built with ``seed=s`` starts from the same weights whatever the global RNG did before.

The runner seeds right before it builds a method, but a researcher calling the API (or a test's
module fixture, built before the per-test seeding) may not: then two runs with the same seed would
train from different initial weights and end at different numbers.
"""

from __future__ import annotations

import pytest
import torch

from evaluators.core.config import load_config
from methods import get_method, list_methods


def _weights(method) -> list[torch.Tensor]:
    return [p.detach().clone() for m in method.components().values() for p in m.state_dict().values()]


@pytest.mark.parametrize("name", list_methods())
def test_same_seed_same_initial_weights_after_other_draws(name):
    cfg = load_config("method", name, "smoke")
    built = []
    for earlier_draws in (1, 2):
        torch.manual_seed(1000 + earlier_draws)
        torch.rand(earlier_draws)  # whatever ran before
        built.append(_weights(get_method(name)(cfg, seed=0)))
    a, b = built
    assert len(a) == len(b) > 0
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True)), f"{name}: seed=0 gave different initial weights"
