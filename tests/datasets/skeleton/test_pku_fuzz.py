"""Property-based fuzzing of the PKU-MMD text parsers: any text gives a valid array or DatasetError."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evaluators.datasets import DatasetError
from evaluators.datasets.skeleton.pku import read_pku_labels, read_pku_skeleton

FIELDS = st.sampled_from(["1", "7", "51", "52", "0", "-3", "12.5", "inf", "-inf", "nan", "1e400", "x", "", " "])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(FIELDS, min_size=1, max_size=5).map(",".join), max_size=4))
def test_label_parser_returns_valid_rows_or_names_the_file(tmp_path, lines):
    path = tmp_path / "0001-L.txt"
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    try:
        out = read_pku_labels(path)
    except DatasetError as e:
        assert "0001-L.txt" in str(e)
        return
    assert out.dtype == np.int64 and out.shape[1] == 3
    assert ((out[:, 0] >= 1) & (out[:, 0] <= 51) & (out[:, 2] > out[:, 1]) & (out[:, 1] >= 0)).all()


@pytest.mark.parametrize("field", ["inf", "1e400", "-inf"])
def test_label_overflowing_number_is_a_dataset_error(tmp_path, field):
    path = tmp_path / "0002-M.txt"
    path.write_text(f"3,{field},40,1\n", encoding="ascii")
    with pytest.raises(DatasetError, match=r"0002-M\.txt"):
        read_pku_labels(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 3), st.integers(0, 149), FIELDS)
def test_skeleton_parser_returns_finite_frames_or_names_the_file(tmp_path, frames, pos, field):
    rows = [["0.5"] * 150 for _ in range(frames)]
    rows[-1][pos] = field
    path = tmp_path / "0003-R.txt"
    path.write_text("\n".join(" ".join(r) for r in rows) + "\n", encoding="ascii")
    try:
        out = read_pku_skeleton(path)
    except DatasetError as e:
        assert "0003-R.txt" in str(e)
        return
    assert out.shape == (frames, 150) and np.isfinite(out).all()
