"""``python -m evaluators.datasets inspect NAME`` with a path relative to the working directory."""

from __future__ import annotations

import numpy as np

from evaluators.datasets import inspect_path
from tests.conftest import need_shared


def test_relative_motion_file_is_recognised_by_its_folder(monkeypatch):
    vecs = need_shared("humanml3d", "HumanML3D", "new_joint_vecs", "012314.npy")
    monkeypatch.chdir(vecs.parent)
    out = inspect_path("012314.npy")
    assert out["format"] == "humanml3d new_joint_vecs"
    assert out["frames"] == np.load(vecs).shape[0] and out["feat_dim"] == 263


def test_relative_caption_file_is_recognised(tmp_path, monkeypatch):
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "000001.txt").write_text("a person walks forward#a/DET person/NOUN walk/VERB forward/ADV#0.0#0.0\n")
    monkeypatch.chdir(texts)
    out = inspect_path("000001.txt")
    assert out["format"] == "humanml3d caption file" and out["captions"] == 1
