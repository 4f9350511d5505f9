"""synth_ntu: written in the real .skeleton format, read by the real loader, seeded, atomic, learnable."""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pytest
import torch

from evaluators.datasets import load_dataset
from evaluators.datasets.skeleton.ntu import NAME_RE, parse_name, read_missing_list, read_skeleton
from evaluators.datasets.skeleton.ntu_splits import NTU60_XSUB_TEST, NTU60_XSUB_TRAIN
from evaluators.datasets.skeleton.synth_ntu import generate

TINY = {"num_actions": 12, "subjects": [1, 3], "cameras": [1, 2], "frames": [20, 30], "missing_samples": 1}


def _digest(root) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_default_generation_is_small_and_complete(synth):
    """The default set is 12 actions x 10 subjects x 3 cameras, 40-80 frames each (its cost is its
    size: counted here, not timed, so the check does not depend on the machine's load)."""
    assert synth.source == "synthetic" and synth.benchmark == "xsub" and synth.num_classes == 12
    files = sorted((synth.cache_dir).glob("synth_ntu-*/nturgb+d_skeletons/*.skeleton"))
    assert len(files) == 12 * 10 * 3
    frames = [int(p.read_bytes().split(b"\r\n", 1)[0]) for p in files]
    assert all(40 <= f <= 80 for f in frames), sorted(set(frames))
    assert all(NAME_RE.fullmatch(p.stem) for p in files)
    assert b"\r\n" in files[0].read_bytes()[:20] and not list(synth.cache_dir.glob(".synth_ntu-*"))


def test_split_sizes_follow_the_xsub_rule(synth):
    root = next(synth.cache_dir.glob("synth_ntu-*"))
    missing = read_missing_list(root / "NTU_RGBD_samples_with_missing_skeletons.txt")
    assert len(missing) == 2
    names = [p.stem for p in root.glob("nturgb+d_skeletons/*.skeleton") if p.stem not in missing]
    want = Counter("train" if parse_name(n)["performer"] in NTU60_XSUB_TRAIN else "test" for n in names)
    tr, te = synth.split("train"), synth.split("test")
    assert (len(tr), len(te)) == (want["train"], want["test"]) and len(tr) + len(te) == 358
    assert {parse_name(n)["performer"] for n in tr.names} == {1, 2, 4, 5, 8}
    assert {parse_name(n)["performer"] for n in te.names} <= set(NTU60_XSUB_TEST)
    assert not set(missing) & set(tr.names + te.names)
    assert set(tr.labels.tolist()) == set(range(12)) == set(te.labels.tolist())
    for sp in (tr, te):
        assert sp.data.shape[1:] == (3, 300, 25, 2) and sp.data.dtype == np.float32
        assert (sp.valid_frames >= 30).all() and (sp.valid_frames <= 80).all()


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_round_trip_through_the_real_reader_and_denoiser(synth):
    """Raw files hold extra bodies, id switches and dropped frames; preprocessing keeps the actors."""
    root = next(synth.cache_dir.glob("synth_ntu-*"))
    bodies, dropped = Counter(), 0
    for p in sorted(root.glob("nturgb+d_skeletons/*.skeleton")):
        rec = read_skeleton(p)
        bodies[rec.num_bodies] += 1
        dropped += int((rec.bodies_per_frame == 0).any())
    assert bodies[1] and bodies[2] and bodies[3] and dropped  # spurious third bodies, empty frames
    interactions = {10, 11}  # handshake, push: two actors survive denoising; one otherwise
    for sp in (synth.split("train"), synth.split("test")):
        two = np.abs(sp.data[..., 1]).sum(axis=(1, 2, 3)) > 0
        np.testing.assert_array_equal(two, np.isin(sp.labels, list(interactions)))
        first = sp.data[:, :, 0, 1, 0]  # joint 2 of actor 1, first frame: the origin
        np.testing.assert_allclose(first, 0, atol=1e-6)
        for i in range(0, len(sp), 37):
            assert (sp.data[i, :, sp.valid_frames[i]:] == 0).all()


def test_byte_identical_for_the_same_seed_and_different_otherwise(cache_env, tmp_path, monkeypatch):
    a = generate({**TINY, "seed": 3})
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path / "other"))
    b = generate({**TINY, "seed": 3})
    c = generate({**TINY, "seed": 4})
    assert a != b and _digest(a) == _digest(b)
    assert _digest(a) != _digest(c) and a.name != c.name  # the seed is part of the cache key


def test_failed_generation_leaves_nothing(cache_env, monkeypatch):
    import evaluators.datasets.skeleton.synth_ntu as sn

    def boom(stage, o):
        (stage / "nturgb+d_skeletons").mkdir()
        (stage / "nturgb+d_skeletons" / "half.skeleton").write_text("1\r\n")
        raise RuntimeError("killed")

    monkeypatch.setattr(sn, "_write_all", boom)
    with pytest.raises(RuntimeError):
        generate(TINY)
    assert not list(cache_env.iterdir())


def test_bad_options_raise():
    with pytest.raises(ValueError, match="num_actions"):
        load_dataset({"name": "synth_ntu", "num_actions": 99})


def test_raw_joint_classifier_is_clearly_above_chance_and_below_perfect(synth):
    """A linear probe on raw joints (test-crop, 30 frames) must separate the actions only partly."""
    def feats(split):
        f = synth.feeder(split, train=False, window=30)
        return torch.stack([f[i][0] for i in range(len(f))]).reshape(len(f), -1)

    xtr, xte = feats("train"), feats("test")
    ytr, yte = torch.from_numpy(synth.split("train").labels), torch.from_numpy(synth.split("test").labels)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-3
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    torch.manual_seed(0)
    lin = torch.nn.Linear(xtr.shape[1], synth.num_classes)
    opt = torch.optim.Adam(lin.parameters(), lr=1e-2, weight_decay=1e-3)
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(lin(xtr), ytr).backward()
        opt.step()
    with torch.no_grad():
        acc = (lin(xte).argmax(1) == yte).float().mean().item()
        train_acc = (lin(xtr).argmax(1) == ytr).float().mean().item()
    chance = 1 / synth.num_classes
    assert train_acc > 0.9  # the probe can fit; the gap to test comes from unseen subjects
    assert 3 * chance < acc < 0.95, acc


def test_large_splits_stay_memory_mapped_with_identical_content(synth):
    """Splits above ``in_memory_max_samples`` are views of an on-disk array (no 20 GB copy)."""
    from tests.datasets.skeleton.helpers import CacheEnv

    with CacheEnv(synth.cache_dir):
        lean = load_dataset({"name": "synth_ntu", "in_memory_max_samples": 10})
        tr = lean.split("train")
    assert isinstance(tr.data.base, np.memmap) or isinstance(tr.data, np.memmap)
    ref = synth.split("train")
    np.testing.assert_array_equal(np.asarray(tr.data), ref.data)
    np.testing.assert_array_equal(tr.valid_frames, ref.valid_frames)
    assert tr.names == ref.names
    x, y, i = lean.feeder(tr, train=False)[3]
    assert x.shape == (3, 120, 25, 2) and y == ref.labels[3]


def test_max_samples_per_split_takes_evenly_spaced_rows(synth):
    from tests.datasets.skeleton.helpers import CacheEnv

    with CacheEnv(synth.cache_dir):
        small = load_dataset({"name": "synth_ntu", "max_samples_per_split": 20})
        tr = small.split("train")
    ref = synth.split("train")
    want = np.linspace(0, len(ref) - 1, 20).round().astype(int)
    assert tr.names == [ref.names[i] for i in want]
    np.testing.assert_array_equal(tr.data, ref.data[want])
