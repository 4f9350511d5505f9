"""``python -m evaluators.datasets inspect`` on every motion format, and the GIF renderer."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from evaluators.datasets.base import inspect_path
from evaluators.datasets.motion.render import render_motion
from tests.conftest import need_shared


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_inspect_real_files():
    root = need_shared("humanml3d", "HumanML3D")
    vecs = inspect_path(root / "new_joint_vecs" / "012314.npy")
    assert (vecs["frames"], vecs["feat_dim"], vecs["joints"]) == (170, 263, 22)
    joints = inspect_path(root / "new_joints" / "012314.npy")
    assert (joints["frames"], joints["joints"]) == (170, 22)
    folder = inspect_path(root)
    assert folder["splits"]["all"]["ids"] == 29228 and folder["splits"]["test"]["mirrored_M"] == 2192
    ann = inspect_path(need_shared("kitml", "annotations.json"))
    assert ann["motions"] == 5766 and ann["captions"] >= 5766
    folder = inspect_path(need_shared("kitml"))
    assert folder["splits"]["test"] == 786 and folder["motions"] == 5766


def test_inspect_synthetic_formats(synth_t2m, tmp_path):
    from evaluators.datasets.motion.synth_action import generate
    from tests.datasets.motion.conftest import SMALL_ACTION

    root = synth_t2m.root
    assert inspect_path(root / "texts" / "000000.txt")["captions"] >= 3
    assert inspect_path(root)["splits"]["train"]["with_motion_file"] == 16
    pkl = generate(tmp_path / "humanact12poses.pkl", {**SMALL_ACTION, "clips_per_class": 2})
    summary = inspect_path(pkl)
    assert summary["clips"] == 24 and list(summary["clips_per_class"].values()) == [2] * 12


def test_inspect_cli_json(capsys):
    from evaluators.datasets.__main__ import main

    path = need_shared("humanml3d", "HumanML3D", "new_joint_vecs", "012314.npy")
    assert main(["inspect", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "humanml3d new_joint_vecs"


def test_render_motion_gif(tmp_path, synth_t2m):
    s = synth_t2m.split("test")[0]
    joints = synth_t2m.features_to_joints(s.motion[:24])
    path = render_motion(joints, tmp_path / "m.gif", s.texts[0].caption, synth_t2m.kinematic_chain, stride=4)
    with Image.open(path) as im:
        assert im.format == "GIF" and 2 <= im.n_frames <= 6  # pillow may merge identical frames
    assert not list(tmp_path.glob(".*tmp*"))
    np.testing.assert_equal(joints.shape, (24, 22, 3))
