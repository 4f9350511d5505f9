"""The shared value checks of :mod:`evaluators.datasets.checks`, against numpy's own writer and plain arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from evaluators.datasets.base import DatasetError
from evaluators.datasets.checks import (
    check_box,
    check_npy_size,
    check_npz_sizes,
    check_text,
    finite_number,
    integer_id,
    load_npy,
)


@pytest.mark.parametrize("dtype", ["<f4", ">f8", "<i2", "u1"])
def test_npy_size_accepts_what_numpy_writes_and_refuses_one_byte_less(tmp_path, dtype):
    arr = np.arange(3 * 7, dtype=dtype).reshape(3, 7)
    p = tmp_path / "a.npy"
    np.save(p, arr)
    assert check_npy_size(p) == (3, 7)
    np.testing.assert_array_equal(load_npy(p), arr)  # the check changes nothing of a valid file
    p.write_bytes(p.read_bytes()[:-1])
    with pytest.raises(DatasetError, match=rf"a\.npy.*\(3, 7\).*{arr.nbytes} bytes.*{arr.nbytes - 1} bytes"):
        load_npy(p)


def test_npz_sizes_per_member(tmp_path):
    p = tmp_path / "z.npz"
    np.savez_compressed(p, a=np.zeros((4, 5)), b=np.ones(3, np.int64))
    assert check_npz_sizes(p) == {"a": (4, 5), "b": (3,)}


def test_object_arrays_are_refused_from_the_header(tmp_path):
    p = tmp_path / "o.npy"
    np.save(p, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DatasetError, match="pickled objects"):
        check_npy_size(p)


def test_text_allows_tabs_and_unicode_refuses_control_bytes_and_length():
    assert check_text("un homme\tmarche — vite", "f.txt", "caption") == "un homme\tmarche — vite"
    for bad in ("a\x00b", "a\x1bb", "a\x7fb"):
        with pytest.raises(DatasetError, match=r"f\.txt: caption: control character"):
            check_text(bad, "f.txt", "caption")
    with pytest.raises(DatasetError, match="11 characters"):
        check_text("x" * 11, "f.txt", "caption", max_chars=10)


def test_numbers_and_ids():
    assert finite_number(np.float32(2.5), "d.json", "v", low=0) == 2.5
    for bad in (True, "1", None, float("nan"), float("inf")):
        with pytest.raises(DatasetError, match=r"d\.json: v"):
            finite_number(bad, "d.json", "v")
    with pytest.raises(DatasetError, match="must be > 0"):
        finite_number(0, "d.json", "v", above=0.0)
    assert integer_id(np.int64(7), "d.json", "id") == 7
    for bad in (7.0, "7", False):
        with pytest.raises(DatasetError, match=r"d\.json: id: expected an integer id"):
            integer_id(bad, "d.json", "id")


@pytest.mark.parametrize("box, ok", [
    ([0, 0, 640, 480], True),            # the whole image
    ([-100, -50, 200, 100], True),       # partly outside, overlapping
    ([630, 470, 200, 200], True),        # overlapping the corner
    ([640, 0, 10, 10], False),           # touches the right edge only: no overlap
    ([-5000, -5000, 10, 10], False),     # far outside
    ([0, 0, 1281, 10], False),           # reaches beyond one image width to the right
    ([10, 10, 0, 5], False),             # empty
])
def test_box_against_image(box, ok):
    if ok:
        np.testing.assert_array_equal(check_box(box, "a.json", "bbox", (640, 480)), np.asarray(box, float))
    else:
        with pytest.raises(DatasetError, match=r"a\.json: bbox"):
            check_box(box, "a.json", "bbox", (640, 480))
