"""The benchmarks' per-method options (``--max-steps``, ``--train-batch``): what they parse to and how they fail."""

import pytest

from benchmarks.conftest import cap_for, parse_max_steps


def test_per_method_values_apply_to_their_method_only():
    values = parse_max_steps("macdiff=32, mld=64", "--train-batch")
    assert values == {"macdiff": 32, "mld": 64}
    assert cap_for(values, "macdiff") == 32 and cap_for(values, "momask") is None
    assert cap_for(parse_max_steps("8", "--train-batch"), "momask") == 8
    assert parse_max_steps(None, "--train-batch") is None


@pytest.mark.parametrize("text", ["0", "macdiff=0", "macdiff=x", "=4", "macdiff"])
def test_a_malformed_value_names_the_option(text):
    with pytest.raises(pytest.UsageError, match=r"^--train-batch: expected N or METHOD=N"):
        parse_max_steps(text, "--train-batch")
