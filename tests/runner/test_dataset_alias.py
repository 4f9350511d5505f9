"""``dataset=NAME`` selects one dataset config (every dataset must be selectable as ``dataset=...``)."""

from __future__ import annotations

import pytest

from evaluators.runner.compose import dataset_alias
from evaluators.runner.run import main


@pytest.mark.parametrize(("arg", "want"), [
    ("dataset=kit_ml", "datasets=[kit_ml]"),
    ("dataset=pku2_xview", "datasets=[pku2_xview]"),
    ("dataset.root=/data/KIT", "dataset.root=/data/KIT"),   # per-run dataset overrides untouched
    ("datasets=[a,b]", "datasets=[a,b]"),
    ("dataset=a,b", "dataset=a,b"),                         # sweeps/lists: left to hydra
])
def test_dataset_alias_rewrites_only_a_single_name(arg, want):
    assert dataset_alias(arg) == want


def test_dataset_override_composes_that_dataset(capsys):
    main(["--experiment", "mld", "synth-t2m", "dataset=kit_ml", "scale=smoke", "--cfg", "job"])
    out = capsys.readouterr().out
    assert "datasets:\n- kit_ml\n" in out, out[:400]
