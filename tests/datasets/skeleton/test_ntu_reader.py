"""NTU RGB+D ``.skeleton`` reader: real samples, missing lists, every malformed-input case, fuzzing."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evaluators.datasets import DatasetError
from evaluators.datasets.__main__ import main as cli_main
from evaluators.datasets.skeleton.ntu import parse_name, parse_skeleton_text, read_missing_list, read_skeleton
from tests.conftest import REPO, need_shared
from tests.datasets.skeleton.helpers import NTU_SAMPLES, person, skeleton_text


@pytest.mark.parametrize("name", sorted(NTU_SAMPLES))
def test_real_samples_parse_with_documented_counts(name):
    path = need_shared("ntu_rgbd", f"{name}.skeleton")
    rec = read_skeleton(path)
    frames, bodies = NTU_SAMPLES[name]
    assert rec.joints.shape == (frames, bodies, 25, 3) and rec.joints.dtype == np.float32
    assert rec.num_bodies == len(rec.body_ids) == bodies
    assert rec.present.all()  # these samples have every body in every frame
    assert (rec.bodies_per_frame == bodies).all()
    for f in ("depth_xy", "color_xy"):
        assert rec[f].shape == (frames, bodies, 25, 2)
    assert rec.orientation.shape == (frames, bodies, 25, 4)
    assert set(np.unique(rec.joint_tracking)) <= {0, 1, 2}
    assert (rec.body_tracking == 2).all()
    assert np.isfinite(rec.joints).all() and (rec.joints[..., 2] > 0.5).all()  # depth in metres


def test_real_sample_fields_match_the_text():
    path = need_shared("ntu_rgbd", "S001C001P001R001A011.skeleton")
    lines = path.read_bytes().decode().split("\r\n")
    rec = read_skeleton(path)
    body = lines[2].split()
    assert rec.body_ids == [body[0]]
    assert rec.lean_xy[0, 0].tolist() == pytest.approx([float(body[7]), float(body[8])])
    first = [float(v) for v in lines[4].split()]
    assert rec.joints[0, 0, 0].tolist() == pytest.approx(first[0:3])
    assert rec.depth_xy[0, 0, 0].tolist() == pytest.approx(first[3:5])
    assert rec.color_xy[0, 0, 0].tolist() == pytest.approx(first[5:7])
    assert rec.orientation[0, 0, 0].tolist() == pytest.approx(first[7:11])
    assert rec.joint_tracking[0, 0, 0] == int(first[11])
    last = [float(v) for v in lines[-2].split()]  # the file ends with CRLF
    assert rec.joints[-1, 0, 24].tolist() == pytest.approx(last[0:3])
    assert dict(rec)["joints"] is rec.joints and "body_ids" in rec


def test_crlf_and_lf_give_the_same_arrays():
    path = need_shared("ntu_rgbd", "S001C003P008R002A058.skeleton")
    text = path.read_bytes().decode()
    assert "\r\n" in text
    a, b = parse_skeleton_text(text, path), parse_skeleton_text(text.replace("\r\n", "\n"), path)
    np.testing.assert_array_equal(a.joints, b.joints)
    assert a.body_ids == b.body_ids


def test_missing_skeleton_lists():
    n60 = read_missing_list(need_shared("ntu_rgbd", "NTU_RGBD_samples_with_missing_skeletons.txt"))
    n120 = read_missing_list(need_shared("ntu_rgbd", "NTU_RGBD120_samples_with_missing_skeletons.txt"))
    assert (len(n60), len(n120)) == (302, 535)
    assert len(set(n60)) == 302 and set(n60) <= set(n120)
    assert all(parse_name(n)["setup"] <= 17 for n in n60)


def test_parse_name():
    assert parse_name("S017C003P020R001A059.skeleton") == {
        "setup": 17, "camera": 3, "performer": 20, "replication": 1, "action": 59}
    with pytest.raises(DatasetError, match="SsssCcccPpppRrrrAaaa"):
        parse_name("S1C1P1R1A1")


def _good_text(T=3, bodies=1, nl="\r\n") -> str:
    rng = np.random.default_rng(0)
    tracks = [person(rng, T, centre=(b, 0, 3)) for b in range(bodies)]
    return skeleton_text([[(f"7205759403{b}", tracks[b][f]) for b in range(bodies)] for f in range(T)], nl)


BAD_CASES = {
    "empty file": lambda t: "",
    "zero frames": lambda t: "0\r\n",
    "truncated": lambda t: t[: len(t) // 2],
    "truncated joints": lambda t: "\r\n".join(t.split("\r\n")[:20]),
    "wrong joint count": lambda t: t.replace("\r\n25\r\n", "\r\n24\r\n", 1),
    "NaN": lambda t: t.replace(" 250 200", " nan 200", 1).replace("\r\n", "\r\n", 1),
    "NaN xyz": lambda t: _replace_value(t, "nan"),
    "inf xyz": lambda t: _replace_value(t, "inf"),
    "non-numeric": lambda t: _replace_value(t, "abc"),
    "short joint line": lambda t: t.replace(" 0.5 0.5 0.5 0.5 2", " 0.5 0.5 2", 1),
    "short body line": lambda t: t.replace(" 0 1 1 1 1 0 -0.1 0.1 2", " 0 1 1", 1),
    "bad frame count": lambda t: "x" + t[1:],
    "trailing garbage": lambda t: t + "1 2 3\r\n",
    "more frames announced": lambda t: "9" + t[1:],
    "negative body count": lambda t: t.replace("\r\n1\r\n", "\r\n-1\r\n", 1),
}


def _replace_value(text: str, val: str) -> str:
    lines = text.split("\r\n")
    tok = lines[4].split()
    tok[1] = val
    lines[4] = " ".join(tok)
    return "\r\n".join(lines)


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_every_malformed_file_raises_dataset_error_naming_it(tmp_path, case):
    path = tmp_path / f"S001C001P001R001A001_{case.replace(' ', '_')}.skeleton"
    path.write_bytes(BAD_CASES[case](_good_text()).encode())
    with pytest.raises(DatasetError) as ei:
        read_skeleton(path)
    assert str(path) in str(ei.value)


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(DatasetError, match="cannot read"):
        read_skeleton(tmp_path / "nope.skeleton")
    p = tmp_path / "bin.skeleton"
    p.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DatasetError, match="non-ASCII"):
        read_skeleton(p)


def test_frames_without_bodies_and_reappearing_bodies():
    rng = np.random.default_rng(1)
    a, b = person(rng, 4), person(rng, 4, centre=(1, 0, 3))
    text = skeleton_text([[("A", a[0])], [], [("B", b[2]), ("A", a[2])], [("B", b[3])]])
    rec = parse_skeleton_text(text)
    assert rec.body_ids == ["A", "B"] and rec.bodies_per_frame.tolist() == [1, 0, 2, 1]
    assert rec.present.tolist() == [[True, False], [False, False], [True, True], [False, True]]
    np.testing.assert_allclose(rec.joints[2, 1], b[2], atol=1e-6)
    assert (rec.joints[1] == 0).all() and (rec.joints[3, 0] == 0).all()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.sampled_from(["delete", "insert", "replace", "cut"]), st.text(max_size=6))
def test_fuzzed_text_parses_or_raises_dataset_error(pos, op, junk):
    text = _good_text(T=2, bodies=2)
    i = pos % (len(text) + 1)
    mutated = {"delete": text[:i] + text[i + 1:], "insert": text[:i] + junk + text[i:],
               "replace": text[:i] + junk + text[i + len(junk):], "cut": text[:i]}[op]
    try:
        rec = parse_skeleton_text(mutated, "fuzz.skeleton")
    except DatasetError as e:
        assert "fuzz.skeleton" in str(e)
    else:
        assert rec.joints.shape[2:] == (25, 3) and np.isfinite(rec.joints).all()


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_written_values_round_trip(T, B, seed):
    rng = np.random.default_rng(seed)
    tracks = [rng.uniform(-5, 5, (T, 25, 3)) for _ in range(B)]
    rec = parse_skeleton_text(skeleton_text([[(str(b), tracks[b][f]) for b in range(B)] for f in range(T)]))
    want = np.stack(tracks, 1).astype(np.float32)
    np.testing.assert_allclose(rec.joints, want, rtol=1e-6, atol=1e-6)


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_inspect_cli_real_file_and_broken_file(tmp_path, capsys):
    real = need_shared("ntu_rgbd", "S001C003P008R002A058.skeleton")
    out = subprocess.run([sys.executable, "-m", "evaluators.datasets", "inspect", str(real)],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["format"] == "ntu_skeleton" and summary["frames"] == 70 and summary["bodies"] == 2
    assert summary["sample"]["action"] == 58 and summary["splits"]["ntu60_xview"] == "train"
    broken = tmp_path / "S001C001P001R001A001.skeleton"
    broken.write_text(_good_text()[:300])
    assert cli_main(["inspect", str(broken)]) == 2
    assert str(broken) in capsys.readouterr().err


def test_inspect_folder_and_missing_list(capsys):
    folder = need_shared("ntu_rgbd")
    assert cli_main(["inspect", str(folder)]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["format"] == "ntu_skeleton_folder" and s["samples"] == 4
    assert s["bodies"] == {"1": 3, "2": 1} or s["bodies"] == {1: 3, 2: 1}
    assert cli_main(["inspect", str(folder / "NTU_RGBD_samples_with_missing_skeletons.txt")]) == 0
    assert json.loads(capsys.readouterr().out)["samples"] == 302
