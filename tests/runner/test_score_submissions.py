"""Scoring from files: what a submission folder must hold, and every way one is refused.

A hand-built valid submission (random features for every manifest item, as ``.npz`` per
repetition or ``.npy`` per item) passes the checks; each class of defect (missing item, wrong
width or length, NaN, another dataset or schema version, duplicates, unknown items, no
``submission.yaml``) stops ``score`` with exit 2 and one line naming the file, before any work
and writing nothing. Joint-position and COCO-results submissions go through the suite's own
conversion and pycocotools. The round trips and the Python API are in ``test_score.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from evaluators import score as S
from evaluators.runner import score as R
from tests.runner.test_score import PROTO, REPO


def _good_submission(folder: Path, manifest: dict, per_item_npy: bool = False) -> Path:
    """A hand-built valid submission: small random features for every item."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    dim = manifest["representation"]["features"]
    reps: dict[int, dict] = {}
    for it in manifest["items"]:
        x = rng.normal(size=(it["length"], dim)).astype(np.float32)
        if per_item_npy:
            np.save(folder / f"{it['key']}.npy", x)
        reps.setdefault(it["repetition"], {})[it["key"]] = x
    if not per_item_npy:
        for r, arrays in reps.items():
            np.savez(folder / f"r{r:02d}.npz", **arrays)
    meta = {"model": "hand-built", "representation": "features", "manifest": manifest["identity"]}
    (folder / "submission.yaml").write_text(yaml.safe_dump(meta), encoding="utf-8")
    return folder


def _rewrite(npz: Path, fn) -> None:
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files}
    fn(arrays)
    np.savez(npz, **arrays)


def _corrupt(kind: str, sub: Path, manifest: dict) -> str:
    """Break ``sub`` one way; returns what the error line must name."""
    first = manifest["items"][0]["key"]
    if kind == "missing":
        _rewrite(sub / "r00.npz", lambda a: a.pop(first))
        return f"{first}.npy: missing"
    if kind == "dimension":
        _rewrite(sub / "r00.npz", lambda a: a.update({first: a[first][:, :200]}))
        return "expected [length, 263]"
    if kind == "length":
        _rewrite(sub / "r00.npz", lambda a: a.update({first: a[first][:-4]}))
        return "the manifest asks for"
    if kind == "nan":
        _rewrite(sub / "r01.npz", lambda a: a[next(iter(a))].__setitem__((0, 0), np.nan))
        return "NaN or Inf"
    if kind == "other_dataset":
        meta = yaml.safe_load((sub / "submission.yaml").read_text())
        meta["manifest"]["dataset"] = "humanml3d"
        (sub / "submission.yaml").write_text(yaml.safe_dump(meta))
        return "another dataset or version"
    if kind == "other_version":
        meta = yaml.safe_load((sub / "submission.yaml").read_text())
        meta["manifest"]["schema_version"] = 0
        (sub / "submission.yaml").write_text(yaml.safe_dump(meta))
        return "schema_version=0"
    if kind == "duplicate":
        with np.load(sub / "r00.npz") as z:
            np.save(sub / f"{first}.npy", z[first])
        return "duplicate item"
    if kind == "unknown_item":
        with np.load(sub / "r00.npz") as z:
            np.save(sub / "r07_i00000.npy", z[first])
        return "not in the manifest"
    if kind == "no_meta":
        (sub / "submission.yaml").unlink()
        return "submission.yaml: missing"
    raise AssertionError(kind)


BAD = ["missing", "dimension", "length", "nan", "other_dataset", "other_version", "duplicate", "unknown_item",
       "no_meta"]


@pytest.fixture(scope="module")
def small_manifest() -> dict:
    s = S.setup("text2motion", "synth_t2m", "smoke", PROTO)
    return S.manifest_for(s, seed=0)


@pytest.mark.parametrize("kind", BAD)
def test_bad_submission_exit_2_one_line_nothing_written(kind, small_manifest, tmp_path, capsys):
    sub = _good_submission(tmp_path / "sub", small_manifest)
    expect = _corrupt(kind, sub, small_manifest)
    runs = tmp_path / "runs"
    rc = R.main("score", ["text2motion", "synth_t2m", str(sub), f"runs_dir={runs}", *PROTO])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("error: ") and expect in err[0], err
    assert str(sub) in err[0]  # names the file
    assert not runs.exists()


def test_per_item_npy_submission_is_accepted(small_manifest, tmp_path):
    """The ``.npy``-per-item layout passes the same checks (and a half-valid one is refused)."""
    from evaluators.protocols.submission import load_submission

    sub = _good_submission(tmp_path / "sub", small_manifest, per_item_npy=True)
    got = load_submission(sub, small_manifest)
    assert got.raw(small_manifest["items"][0]["key"]).shape[1] == 263


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_cli_score_bad_submission_is_one_line(small_manifest, tmp_path):
    """Through ./reproduce.sh's entry (python -m evaluators.run --score): exit 2, one stderr line."""
    sub = _good_submission(tmp_path / "sub", small_manifest)
    _corrupt("length", sub, small_manifest)
    out = subprocess.run([sys.executable, "-m", "evaluators.run", "--score", "text2motion", "synth-t2m", str(sub),
                          f"runs_dir={tmp_path / 'runs'}", *PROTO], cwd=REPO, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 2, out.stderr[-2000:]
    lines = [ln for ln in out.stderr.splitlines() if not ln.startswith("[")]  # [time logger] log lines
    assert len(lines) == 1 and "the manifest asks for" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_score_writes_nothing_when_submission_folder_absent(tmp_path, capsys):
    rc = R.main("score", ["text2motion", "synth_t2m", str(tmp_path / "nope"), f"runs_dir={tmp_path / 'runs'}"])
    assert rc == 2 and "not a folder" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_joints_submission_is_converted_with_the_suites_features(small_manifest, tmp_path):
    """``representation: joints``: [length + 1, 22, 3] positions become [length, 263] features through
    the suite's extract_features; a joint count other than the manifest's is refused, naming the file."""
    from evaluators.protocols.submission import SubmissionError, load_submission

    sub = tmp_path / "sub"
    sub.mkdir()
    rng = np.random.default_rng(1)
    walk = np.cumsum(rng.normal(scale=0.01, size=(200, 22, 3)), axis=0) + rng.normal(size=(1, 22, 3))
    for it in small_manifest["items"]:
        np.save(sub / f"{it['key']}.npy", walk[: it["length"] + 1].astype(np.float32))
    meta = {"model": "joints", "representation": "joints", "manifest": small_manifest["identity"]}
    (sub / "submission.yaml").write_text(yaml.safe_dump(meta), encoding="utf-8")
    first = small_manifest["items"][0]
    got = load_submission(sub, small_manifest).motion(first["key"])
    assert got.shape == (first["length"], 263) and np.isfinite(got).all()
    np.save(sub / f"{first['key']}.npy", walk[: first["length"] + 1, :21].astype(np.float32))
    with pytest.raises(SubmissionError, match=rf"{first['key']}\.npy: shape .* expected \[length\+1, 22, 3\]"):
        load_submission(sub, small_manifest)


def _coco_submission(folder: Path, manifest: dict, results: list[dict]) -> Path:
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(results), encoding="utf-8")
    meta = {"model": "gt-copy", "representation": "coco_results", "manifest": manifest["identity"]}
    (folder / "submission.yaml").write_text(yaml.safe_dump(meta), encoding="utf-8")
    return folder


def _gt_results(s) -> list[dict]:
    ann = json.loads(Path(s.data.ann_file).read_text())
    return [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
            for a in ann["annotations"] if a.get("num_keypoints", 1) > 0]


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_coco_results_submission_scores_with_pycocotools(tmp_path, capsys):
    """The ground truth submitted as results scores AP 100 (pycocotools); a bad entry: exit 2, one line."""
    s = S.setup("coco_ap", "synth_coco")
    man = S.manifest_for(s, 0)
    res = _gt_results(s)
    sub = _coco_submission(tmp_path / "sub", man, res)
    recs = R.score_main(["coco_ap", "synth_coco", str(sub), f"runs_dir={tmp_path / 'runs'}"])
    assert recs[0]["metrics"]["ap"]["value"] == pytest.approx(100.0)
    assert recs[0]["provenance"]["weights"]["representation"] == "coco_results"
    assert S.coco_results(res, "synth_coco")["ap"] == pytest.approx(100.0)
    for i, bad in enumerate([{**res[0], "image_id": -5}, {**res[0], "keypoints": res[0]["keypoints"][:-3]},
                             {**res[0], "score": float("nan")}]):
        sub = _coco_submission(tmp_path / f"bad{i}", man, [*res[:3], bad])
        assert R.main("score", ["coco_ap", "synth_coco", str(sub), f"runs_dir={tmp_path / 'r2'}"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "results.json[3]" in err[0], err
    assert not (tmp_path / "r2").exists()


def test_export_that_fails_midway_leaves_nothing(small_manifest, tmp_path):
    """write_submission stages under OUT.part and renames: a generator failing mid-way leaves no folder."""
    class Breaks:
        calls = 0

        def generate(self, captions, lengths, steps=None):
            self.calls += 1
            if self.calls == 4:
                raise RuntimeError("out of memory")
            return torch.zeros(len(lengths), max(lengths), 263)

    with pytest.raises(RuntimeError, match="out of memory"):
        R.write_submission(Breaks(), small_manifest, tmp_path / "sub", 0, {"model": "breaks"})
    assert list(tmp_path.iterdir()) == []
