"""The heatmap baseline's own rules (the shared top-down base is tested in tests/pose/test_top_down_base.py)."""

from __future__ import annotations

import pytest

from evaluators.core.config import load_config
from methods import get_method


def test_baseline_refuses_a_heatmap_stride_its_head_cannot_produce():
    with pytest.raises(ValueError, match="heatmap_stride"):
        get_method("heatmap_baseline")(load_config("method", "heatmap_baseline", "smoke", ["heatmap_stride=2"]))
