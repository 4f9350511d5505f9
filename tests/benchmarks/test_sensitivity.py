"""Metric sensitivity (``benchmarks/sensitivity.py``): the facts any sound metric suite must show.

Independent references: the text2motion protocol itself (its real row must be what strength 0
gives), :func:`physical_metrics` called here on the clean motions, closed forms of the
corruptions (a rigid shake keeps bone lengths; a drift of v m/s over n planted frames moves the
root by v n / fps), and the direction each defect must push its metric.
The end-to-end run reuses the synth_t2m smoke evaluator from the suite's model cache (the
``smoke_t2m`` fixture of tests/conftest.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread

from benchmarks.sensitivity import Setup, publish, run_sensitivity, write_outputs
from benchmarks.sensitivity_corruptions import CORRUPTIONS, corrupt_split
from evaluators.datasets.motion.humanml3d import feature_slices, recover_from_ric, recover_full_positions
from evaluators.metrics.physical import physical_metrics
from evaluators.networks.t2m_data import T2MSplit
from evaluators.protocols.registry import RunContext
from evaluators.protocols.text2motion import text2motion
from tests._model_cache import PUBLISHED_THREADS, torch_threads, using_cache

REPS = 2
LEVELS = 3  # strengths 0, 0.5, 1


@pytest.fixture(scope="module")
def setup(model_cache, smoke_t2m):
    # the smoke evaluator the other synth_t2m tests share (smoke_t2m trained it, or loaded it): loaded
    # here through the protocol's own path, at the thread count that is part of its cache key
    with using_cache(model_cache), torch_threads(PUBLISHED_THREADS):
        return Setup("synth_t2m", "smoke", seed=0)


@pytest.fixture(scope="module")
def result(setup):
    return run_sensitivity("synth_t2m", levels=LEVELS, repetitions=REPS, seed=0, setup=setup)


def _values(res, name, key):
    return [lv["metrics"][key]["value"] for lv in res["corruptions"][name]["levels"]]


class _Zeros:
    """A generator the protocol can call; only its real (GT) row is compared here."""

    def generate(self, captions, lengths):
        return np.zeros((len(captions), max(lengths), 263), np.float32)


@pytest.mark.slow
def test_strength_zero_is_the_protocols_real_row(setup, result):
    cfg = {"repetitions": REPS, "mm": {"enabled": False}, "aits": {"enabled": False},
           "evaluator": setup.pcfg["evaluator"]}
    ctx = RunContext(seed=0, data_source="synthetic", extra={"t2m_evaluator": setup.ev})
    real = next(r for r in text2motion(_Zeros(), setup.data, cfg, ctx) if r.variant == "real").metrics
    for name in CORRUPTIONS:
        got = result["corruptions"][name]["levels"][0]["metrics"]
        for key in ("r_precision_top1", "r_precision_top2", "r_precision_top3"):
            assert got[key]["value"] == pytest.approx(real[key]["value"], abs=1e-12), (name, key)
        # the protocol reuses cached GT-window embeddings (other batch composition): fp32 rounding
        for key in ("mm_dist", "diversity", "fid"):
            assert got[key]["value"] == pytest.approx(real[key]["value"], rel=1e-4), (name, key)


@pytest.mark.slow
def test_strength_zero_physical_metrics_are_the_clean_ones(setup, result):
    lens = [len(m) for m in setup.split.motions]
    joints = np.zeros((len(lens), max(lens), 22, 3))
    for i, m in enumerate(setup.split.motions):
        joints[i, :len(m)] = recover_from_ric(m, 22)
    clean = physical_metrics(joints, lens, skeleton="humanml3d", fps=20)
    for name in CORRUPTIONS:
        got = result["corruptions"][name]["levels"][0]["metrics"]
        for key, v in clean.items():
            assert got[key]["value"] == v["value"], (name, key)


@pytest.mark.slow
def test_each_defect_moves_its_metric(result):
    skate = _values(result, "foot_sliding", "skating_ratio")
    assert all(b >= a for a, b in zip(skate, skate[1:])) and skate[-1] > skate[0] + 0.2, skate
    jerk = _values(result, "jitter", "jerk_body")
    assert all(b > a for a, b in zip(jerk, jerk[1:])) and jerk[-1] > 5 * jerk[0], jerk
    for k in ("r_precision_top1", "r_precision_top3"):
        rp = _values(result, "caption_shuffle", k)
        assert all(b < a for a, b in zip(rp, rp[1:])), (k, rp)
    # the motions themselves are untouched by caption shuffling: the physical metrics stay put
    assert len(set(_values(result, "caption_shuffle", "jerk_body"))) == 1
    for name in ("joint_noise", "foot_sliding", "truncation"):
        fid = _values(result, name, "fid")
        assert fid[-1] > 10 * fid[0], (name, fid)


@pytest.mark.slow
def test_outputs_plots_and_page(result, tmp_path):
    files = write_outputs(result, tmp_path / "out")
    pngs = {f.stem for f in files if f.suffix == ".png"}
    assert pngs == set(CORRUPTIONS)
    for f in files:
        if f.suffix == ".png":
            img = imread(f)
            assert img.shape[0] > 100 and img.shape[1] > 400 and img.std() > 0, f
    page = publish(files, result, leaderboards=tmp_path / "lb")
    text = page.read_text(encoding="utf-8")
    assert "Pipeline check on synthetic data" in text and "not paper numbers" in text
    for name in CORRUPTIONS:
        assert f"(sensitivity/{name}.png)" in text and (tmp_path / "lb" / "sensitivity" / f"{name}.png").is_file()
    assert result["data_source"] == "synthetic" and result["evaluator"]["source"] == "trained"
    assert result["seed"] == 0 and result["provenance"]["evaluator"]["id"] == "retrained"


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_rigid_jitter_keeps_bone_lengths_and_noise_does_not(setup):
    rng = np.random.default_rng(0)
    parents = [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19]  # HumanML3D SMPL chain

    def bones(m):
        p = recover_from_ric(m, 22)
        return np.linalg.norm(p[:, 1:] - p[:, parents[1:]], axis=-1)

    clean = setup.split.motions[:4]
    small = T2MSplit(list(clean), setup.split.captions[:4], setup.split.tokens[:4])
    jit = corrupt_split(small, "jitter", 1.0, rng)
    noisy = corrupt_split(small, "joint_noise", 1.0, rng)
    for c, j, n in zip(clean, jit.motions, noisy.motions):
        assert np.abs(bones(j) - bones(c)).max() < 1e-4
        assert np.abs(bones(n) - bones(c)).max() > 0.01


def test_foot_sliding_drifts_the_root_by_speed_times_planted_time(setup):
    m = setup.split.motions[0]
    small = T2MSplit([m], setup.split.captions[:1], setup.split.tokens[:1])
    out = corrupt_split(small, "foot_sliding", 0.5, np.random.default_rng(1)).motions[0]
    planted = int((m[:, feature_slices(22)["feet"]] > 0.5).any(axis=1).sum())
    drift = recover_full_positions(out)[-1, 0] - recover_full_positions(m)[-1, 0]
    speed = 0.5 * CORRUPTIONS["foot_sliding"].max_amount
    assert planted > 0
    assert np.hypot(drift[0], drift[2]) == pytest.approx(speed * planted / 20.0, rel=1e-3)
    assert abs(drift[1]) < 1e-4


def test_strength_zero_is_the_identity_and_shuffle_moves_every_caption(setup):
    rng = np.random.default_rng(0)
    for name in CORRUPTIONS:
        assert corrupt_split(setup.split, name, 0.0, rng) is setup.split
    shuffled = corrupt_split(setup.split, "caption_shuffle", 1.0, rng)
    assert sorted(map(tuple, shuffled.captions)) == sorted(map(tuple, setup.split.captions))
    assert all(a is not b for a, b in zip(shuffled.captions, setup.split.captions))
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt_split(setup.split, "blur", 0.5, rng)
    with pytest.raises(ValueError, match="strength"):
        corrupt_split(setup.split, "jitter", 1.5, rng)


def test_bad_arguments_fail_before_any_work():
    with pytest.raises(ValueError, match="--levels must be >= 2"):
        run_sensitivity("synth_t2m", levels=1)
    with pytest.raises(ValueError, match="unknown corruption"):
        run_sensitivity("synth_t2m", corruptions=["blur"])
