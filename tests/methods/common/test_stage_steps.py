"""A training stage's step budget: the configured steps, or the epoch budget when (and only when) unset."""

from __future__ import annotations

import numpy as np
import pytest

from methods.common.training import stage_steps


def _never() -> int:
    raise AssertionError("the epoch budget was computed although steps were set")


def test_set_steps_are_used_and_the_epoch_budget_only_when_null():
    assert stage_steps(7, _never, "vae.steps") == 7
    assert stage_steps(7.0, _never, "vae.steps") == 7  # a YAML 7.0
    assert stage_steps(np.int64(7), _never, "vae.steps") == 7
    assert stage_steps(None, lambda: 3 * 5, "vae.steps") == 15


@pytest.mark.parametrize("bad", [0, -5, 2.5, "abc", True, float("inf"), float("nan"), [7]])
def test_zero_negative_fractional_or_non_numbers_name_the_key(bad):
    with pytest.raises(ValueError, match=r"^denoiser\.steps must be a whole number >= 1") as e:
        stage_steps(bad, _never, "denoiser.steps")
    assert repr(bad) in str(e.value)
