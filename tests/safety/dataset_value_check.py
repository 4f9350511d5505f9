"""The check every row of the dataset-values tables runs (``test_dataset_values.py`` for the motion
formats, ``test_dataset_values_skeleton_pose.py`` for skeletons and 2D pose): the format's loader AND
``inspect`` both refuse the crafted file with :class:`DatasetError` naming every needle, in one short
message."""

from __future__ import annotations

import pytest

from evaluators.datasets.base import DatasetError, inspect_path


def registry() -> tuple[dict, object]:
    """``(cases, case)``: ``@case`` adds a row builder to ``cases`` under its function name."""
    cases: dict = {}

    def case(fn):
        cases[fn.__name__] = fn
        return fn
    return cases, case


def assert_refused_by_loader_and_inspect(row, tmp_path) -> None:
    """Build the row's file under ``tmp_path``; loader and ``inspect`` must both raise naming every needle."""
    load, target, needles = row(tmp_path)
    with pytest.raises(DatasetError) as ei:
        load()
    msg = str(ei.value)
    assert all(n in msg for n in needles), (msg[:400], needles)
    assert len(msg) < 600, "one clear line, not a dump of the file"
    if target is not None:
        with pytest.raises(DatasetError) as ej:
            inspect_path(target)
        imsg = str(ej.value)
        assert all(n in imsg for n in needles), (imsg[:400], needles)
