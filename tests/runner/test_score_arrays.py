"""Scoring skeleton features, reconstruction pairs and COCO results from files.

Checked against behaviour: a MacDiff features export scored through the linear probe, a MacDiff
reconstruction export and a DiffusionPose COCO results JSON scored with pycocotools must each give
the in-process protocol's numbers exactly (CPU, same seed); every malformed submission must stop
with exit 2, one line naming the file, nothing written; the kNN probe must agree with
scikit-learn's distance-weighted kNN.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from evaluators import score as S
from evaluators.core.config import load_config
from evaluators.metrics.knn import knn_top1
from evaluators.records import normalise_metric
from evaluators.runner import score as R

# tiny, untrained encoders: the round trip needs fixed weights, not quality
MACDIFF = ["model.dim_feat=16", "model.depth=1", "model.decoder_depth=1", "model.num_heads=2",
           "sampling.ddim_steps=2", "augment.ddim_steps=2"]
LINEAR = ["features=frozen_once", "poolings=[mean]", "epochs=4"]
RECON = ["max_samples=12", "batch_size=5", "window=32"]
DP = ["train.total_steps=80", "train.batch_size=8", "train.save_best=null", "flip_test=false"]
POSE = ["boxes=[gt]", "overlays=0", "flip_test=false"]


@pytest.fixture(scope="module")
def macdiff_ckpt(tmp_path_factory) -> Path:
    from methods import get_method

    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("macdiff") / "m.pt"
    get_method("macdiff")(load_config("method", "macdiff", "smoke", MACDIFF), seed=0).save_checkpoint(path)
    return path


def _macdiff(ckpt: Path):
    from methods import get_method

    m = get_method("macdiff")(load_config("method", "macdiff", "smoke", MACDIFF), seed=0)
    m.load_checkpoint(ckpt)
    return m


def _export(method: str, dataset: str, protocol: str, tmp_path: Path, ckpt: Path, proto: list, mcfg: list,
            *extra: str) -> Path:
    man = tmp_path / "m.json"
    R.manifest_main([protocol, dataset, "--out", str(man), "scale=smoke", *proto])
    sub = tmp_path / "sub"
    R.export_main([method, dataset, "--manifest", str(man), "--out", str(sub), f"checkpoint={ckpt}",
                   *[f"method_cfg.{o}" for o in mcfg], *proto, *extra])
    return sub


def _same(record: dict, metrics: dict) -> None:
    assert record["metrics"] == {k: normalise_metric(k, v) for k, v in metrics.items()}  # bit for bit


def test_macdiff_features_round_trip_equals_in_process(macdiff_ckpt, tmp_path):
    """export features (.npy + ids) -> score: the linear-probe record equals the in-process
    frozen_once linear record; the kNN probe comes with it."""
    s = S.setup("linear", "synth_ntu", "smoke", LINEAR)
    in_process = {r.variant: r.metrics for r in S.run_protocol(s, _macdiff(macdiff_ckpt), seed=1)}
    sub = _export("macdiff", "synth_ntu", "linear", tmp_path, macdiff_ckpt, LINEAR, MACDIFF, "pooling=mean")
    assert sorted(p.name for p in sub.iterdir()) == ["submission.yaml", "test_features.npy", "test_ids.txt",
                                                     "train_features.npy", "train_ids.txt"]
    recs = R.score_main(["linear", "synth_ntu", str(sub), f"runs_dir={tmp_path / 'runs'}", "seed=1", *LINEAR])
    by = {r["variant"]: r for r in recs}
    assert set(by) == {"pool=mean,features=frozen_once", "knn,pool=mean"}
    _same(by["pool=mean,features=frozen_once"], in_process["pool=mean,features=frozen_once"])
    assert 0.0 <= by["knn,pool=mean"]["metrics"]["top1"]["value"] <= 100.0
    assert by["knn,pool=mean"]["provenance"]["weights"]["id"] == "submitted"
    # the same features in another row order (ids reordered with them) score the same
    ids = (sub / "train_ids.txt").read_text().split()
    x = np.load(sub / "train_features.npy")
    (sub / "train_ids.txt").write_text("\n".join(ids[::-1]) + "\n")
    np.save(sub / "train_features.npy", x[::-1])
    again = R.score_main(["linear", "synth_ntu", str(sub), f"runs_dir={tmp_path / 'r2'}", "seed=1", *LINEAR])
    assert again[0]["metrics"] == by["pool=mean,features=frozen_once"]["metrics"]


def test_macdiff_reconstruction_round_trip_equals_in_process(macdiff_ckpt, tmp_path):
    """export pairs (inputs + reconstructions) -> score: equal to the in-process reconstruction record."""
    s = S.setup("reconstruction", "synth_ntu", "smoke", RECON)
    in_process = S.run_protocol(s, _macdiff(macdiff_ckpt), seed=0)[0].metrics
    sub = _export("macdiff", "synth_ntu", "reconstruction", tmp_path, macdiff_ckpt, RECON, MACDIFF)
    recs = R.score_main(["reconstruction", "synth_ntu", str(sub), f"runs_dir={tmp_path / 'runs'}", *RECON])
    # a reconstruction replayed from files reports no masked-joint error (MacDiff returns its mask
    # in-process only). PA-MPJPE may differ in the last bit: MacDiff returns a permuted (non-
    # contiguous) tensor, the replay a contiguous array of the same values, and numpy's pairwise
    # sums in procrustes_align follow the memory layout; every other number is bit for bit.
    want = {k: normalise_metric(k, v) for k, v in in_process.items() if k != "mpjpe_masked_mm"}
    got = recs[0]["metrics"]
    assert set(got) == set(want)
    assert got["pa_mpjpe_mm"]["value"] == pytest.approx(want.pop("pa_mpjpe_mm")["value"], rel=1e-12, abs=0)
    assert {k: v for k, v in got.items() if k != "pa_mpjpe_mm"} == want


def test_diffusionpose_coco_round_trip_equals_in_process(tmp_path):
    """export COCO results (GT boxes) -> score with pycocotools: equal to the in-process coco_ap
    gt_boxes record's OKS AP / AR (its PCK needs the GT pairing of the boxes, not in a results file).
    80 steps of batch 8: about the fewest for which the tiny model lands keypoints inside OKS 0.5."""
    from evaluators.datasets import load_dataset
    from methods import get_method

    torch.set_num_threads(1)
    data = load_dataset(load_config("dataset", "synth_coco", "smoke"))
    dp = get_method("diffusionpose")(load_config("method", "diffusionpose", "smoke", DP), seed=0,
                                     workdir=tmp_path / "w")
    dp.fit(data)
    dp.save_checkpoint(tmp_path / "dp.pt")
    s = S.setup("coco_ap", "synth_coco", "smoke", POSE)
    in_process = {r.variant: r.metrics for r in S.run_protocol(s, dp, seed=0)}
    sub = _export("diffusionpose", "synth_coco", "coco_ap", tmp_path, tmp_path / "dp.pt", POSE, DP, "boxes=gt")
    recs = R.score_main(["coco_ap", "synth_coco", str(sub), f"runs_dir={tmp_path / 'runs'}", *POSE])
    coco = {k: v for k, v in in_process["gt_boxes"].items() if not k.startswith("pck")}  # PCK needs GT pairing
    _same(recs[0], coco)
    assert coco["ap50"] > 0.0  # the predictions are scored, not all misses (else equality would be vacuous)


# -- malformed submissions: exit 2, one line naming the file, nothing written ---------------------------

def _features_submission(folder: Path, manifest: dict, dim: int = 8) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    spec = manifest["representation"]["skeleton_features"]
    for split in ("train", "test"):
        ids = spec[f"{split}_ids"]
        np.save(folder / f"{split}_features.npy", rng.normal(size=(len(ids), dim)).astype(np.float32))
        (folder / f"{split}_ids.txt").write_text("".join(f"{i}\n" for i in ids))
    meta = {"model": "hand-built", "representation": "skeleton_features", "manifest": manifest["identity"]}
    (folder / "submission.yaml").write_text(yaml.safe_dump(meta))
    return folder


def _set_meta(sub: Path, **kv) -> None:
    meta = yaml.safe_load((sub / "submission.yaml").read_text())
    meta.update(kv)
    (sub / "submission.yaml").write_text(yaml.safe_dump(meta))


def _break_features(kind: str, sub: Path) -> str:
    ids = (sub / "train_ids.txt").read_text().split()
    x = np.load(sub / "train_features.npy")
    if kind == "unknown_id":
        (sub / "train_ids.txt").write_text("\n".join(["nobody", *ids[1:]]))
        return "train_ids.txt: id 'nobody' (line 1) is not a sample of the train split"
    if kind == "duplicate_id":
        (sub / "train_ids.txt").write_text("\n".join([ids[1], *ids[1:]]))
        return "train_ids.txt: duplicate id"
    if kind == "missing_id":
        (sub / "train_ids.txt").write_text("\n".join(ids[1:]))
        np.save(sub / "train_features.npy", x[1:])
        return f"train_ids.txt: 1 of the train split's {len(ids)} ids missing"
    if kind == "rows":
        np.save(sub / "train_features.npy", x[:-1])
        return f"train_features.npy: shape ({len(ids) - 1}, 8), expected [{len(ids)}, D]"
    if kind == "dim":
        np.save(sub / "test_features.npy", np.zeros((len((sub / "test_ids.txt").read_text().split()), 5), np.float32))
        return "test_features.npy: 5 features per sample, the train features have 8"
    if kind == "nan":
        x[3, 2] = np.nan
        np.save(sub / "train_features.npy", x)
        return "train_features.npy: contains NaN or Inf"
    if kind == "missing_file":
        (sub / "test_features.npy").unlink()
        return "test_features.npy: missing"
    if kind == "escape":
        _set_meta(sub, train={"features": "../outside.npy", "ids": "train_ids.txt"})
        return "points outside the submission folder"
    if kind == "absolute":
        _set_meta(sub, test={"features": "/etc/passwd", "ids": "test_ids.txt"})
        return "is an absolute path"
    if kind == "pooling":
        _set_meta(sub, pooling="max")
        return "pooling 'max' is not one of mean, joint"
    raise AssertionError(kind)


FEATURE_BAD = ["unknown_id", "duplicate_id", "missing_id", "rows", "dim", "nan", "missing_file", "escape",
               "absolute", "pooling"]


@pytest.fixture(scope="module")
def linear_manifest() -> dict:
    return S.manifest_for(S.setup("linear", "synth_ntu", "smoke", LINEAR), 0)


@pytest.mark.parametrize("kind", FEATURE_BAD)
def test_bad_features_submission_exit_2_one_line(kind, linear_manifest, tmp_path, capsys):
    sub = _features_submission(tmp_path / "sub", linear_manifest)
    expect = _break_features(kind, sub)
    rc = R.main("score", ["linear", "synth_ntu", str(sub), f"runs_dir={tmp_path / 'runs'}", *LINEAR])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("error: ") and expect in err[0] and str(sub) in err[0], err
    assert not (tmp_path / "runs").exists()


def _pairs_submission(folder: Path, manifest: dict, s) -> Path:
    """A valid pairs submission: the suite's own inputs (as a model would receive them), noisy outputs."""
    from evaluators.protocols import reconstruction as REC

    folder.mkdir()
    c = s.protocol_cfg
    sp, feeder, _ = REC.skeleton_inputs(s.data, {**load_config("protocol", "reconstruction", "smoke"), **c})
    rng = np.random.default_rng(0)
    inputs = {it["key"]: REC.skeleton_input(sp, feeder, [it["index"]])[0].numpy() for it in manifest["items"]}
    np.savez(folder / "inputs.npz", **inputs)
    np.savez(folder / "reconstructions.npz",
             **{k: (v + 0.01 * rng.normal(size=v.shape)).astype(np.float32) for k, v in inputs.items()})
    meta = {"model": "hand-built", "representation": "reconstruction_pairs", "manifest": manifest["identity"]}
    (folder / "submission.yaml").write_text(yaml.safe_dump(meta))
    return folder


def _rewrite(npz: Path, fn) -> None:
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files}
    fn(arrays)
    np.savez(npz, **arrays)


def _break_pairs(kind: str, sub: Path) -> str:
    if kind == "other_input":
        _rewrite(sub / "inputs.npz", lambda a: a["i00003"].__imul__(1.5))
        return "inputs.npz[i00003]: differs from the evaluation's input"
    if kind == "missing_item":
        _rewrite(sub / "reconstructions.npz", lambda a: a.pop("i00002"))
        return "reconstructions.npz[i00002]: missing"
    if kind == "shape":
        _rewrite(sub / "reconstructions.npz", lambda a: a.update(i00000=a["i00000"][:, :-1]))
        return "reconstructions.npz[i00000]: shape"
    if kind == "nan":
        _rewrite(sub / "reconstructions.npz", lambda a: a["i00001"].__setitem__((0, 0, 0, 0), np.inf))
        return "reconstructions.npz[i00001]: contains NaN or Inf"
    if kind == "unknown_item":
        _rewrite(sub / "inputs.npz", lambda a: a.update(i99999=a["i00000"]))
        return "inputs.npz[i99999]: item 'i99999' is not in the manifest"
    if kind == "missing_file":
        (sub / "inputs.npz").unlink()
        return "inputs.npz: missing"
    if kind == "escape":
        _set_meta(sub, reconstructions="../../r.npz")
        return "points outside the submission folder"
    if kind == "representation":
        _set_meta(sub, representation="features")
        return "a reconstruction submission is 'reconstruction_pairs'"
    raise AssertionError(kind)


PAIRS_BAD = ["other_input", "missing_item", "shape", "nan", "unknown_item", "missing_file", "escape",
             "representation"]


@pytest.mark.parametrize("kind", PAIRS_BAD)
def test_bad_pairs_submission_exit_2_one_line(kind, tmp_path, capsys):
    s = S.setup("reconstruction", "synth_ntu", "smoke", RECON)
    man = S.manifest_for(s, 0)
    sub = _pairs_submission(tmp_path / "sub", man, s)
    expect = _break_pairs(kind, sub)
    rc = R.main("score", ["reconstruction", "synth_ntu", str(sub), f"runs_dir={tmp_path / 'runs'}", *RECON])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("error: ") and expect in err[0] and str(sub) in err[0], err
    assert not (tmp_path / "runs").exists()


def test_knn_probe_agrees_with_scikit_learn():
    """DINO's weighted kNN (cosine similarity, weights exp(sim / T)) equals scikit-learn's
    KNeighborsClassifier on L2-normalised features with the same weight function."""
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 6))
    ytr, yte = rng.integers(0, 4, 200), rng.integers(0, 4, 80)
    xtr = centres[ytr] + 0.9 * rng.normal(size=(200, 6))
    xte = centres[yte] + 0.9 * rng.normal(size=(80, 6))
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    # on unit vectors the euclidean distance d gives the cosine similarity 1 - d^2 / 2
    clf = KNeighborsClassifier(n_neighbors=20, weights=lambda d: np.exp((1 - d ** 2 / 2) / 0.07))
    want = 100.0 * float((clf.fit(unit(xtr), ytr).predict(unit(xte)) == yte).mean())
    got = knn_top1(torch.tensor(xtr), torch.tensor(ytr), torch.tensor(xte), torch.tensor(yte), 4, k=20,
                   temperature=0.07)
    assert got == pytest.approx(want)
    assert 25.0 < got  # above chance: the check is not vacuous


def test_manifests_of_probe_and_reconstruction(linear_manifest):
    """The features manifest lists the dataset's sample ids; the reconstruction manifest lists the
    protocol's inputs in its batches."""
    from evaluators.datasets import load_dataset

    data = load_dataset(load_config("dataset", "synth_ntu", "smoke"))
    spec = linear_manifest["representation"]["skeleton_features"]
    assert spec["train_ids"] == list(data.split("train").names) and spec["test_ids"] == list(data.split("test").names)
    m = S.manifest_for(S.setup("reconstruction", "synth_ntu", "smoke", RECON), 0)
    assert [len(c) for c in m["calls"]] == [5, 5, 2] and m["items"][0]["shape"] == [3, 32, 25, 2]
    assert json.loads(json.dumps(m)) == m
