"""Action recognisers (official key layouts, trainable) and the action2motion protocol end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluators.core.config import load_config
from evaluators.datasets.base import load_dataset
from evaluators.networks.action_recognition import STGCN, Graph, MotionDiscriminatorA2M
from evaluators.networks.action_train import action_split, pad_motions, recognizer_outputs, train_recognizer
from evaluators.protocols import RunContext, get_protocol
from evaluators.protocols.action2motion import draw_clips
from evaluators.records import make_record


class TinyAction:
    """k action classes of [T, 24, 3] joint sequences: class c oscillates joint group c (test-only)."""

    name = "tiny_action"
    split_names = ("train", "test")

    def __init__(self, n=48, k=4, seed=0):
        rng = np.random.default_rng(seed)
        self.num_classes = k
        self._s = {}
        for split in self.split_names:
            motions, labels = [], []
            for i in range(n):
                c = i % k
                t = int(rng.integers(20, 31))
                x = 0.1 * rng.normal(size=(t, 24, 3)).astype(np.float32)
                x[:, c * 6:(c + 1) * 6, c % 3] += np.sin(np.arange(t) / 3.0)[:, None] * 2
                motions.append(x)
                labels.append(c)
            self._s[split] = {"motions": motions, "labels": np.array(labels)}

    def split(self, name):
        return [{"motion": m, "label": lab} for m, lab in zip(self._s[name]["motions"], self._s[name]["labels"])]


class ClassGenerator:
    """Test-only action-conditioned generator: a random training motion of the class, cropped/looped."""

    def __init__(self, data, shuffle_labels=False):
        self.train = action_split(data, "train")
        self.rng = np.random.default_rng(0)
        self.shuffle_labels = shuffle_labels

    def fit(self, dataset):
        pass

    def generate(self, conditions, lengths, steps=None):
        out = np.zeros((len(conditions), max(lengths), 24, 3), np.float32)
        for b, (c, n) in enumerate(zip(conditions, lengths)):
            c = (c + 1) % 4 if self.shuffle_labels else c
            m = self.train.motions[int(self.rng.choice(np.flatnonzero(self.train.labels == c)))]
            out[b, :n] = np.concatenate([m] * (n // len(m) + 1))[:n]
        return torch.from_numpy(out)


def test_stgcn_official_key_layout_and_graph():
    m = STGCN(in_channels=6, num_class=40, layout="smpl")
    keys = set(m.state_dict())
    for k in ("A", "data_bn.running_mean", "st_gcn_networks.0.gcn.conv.weight", "st_gcn_networks.0.tcn.2.weight",
              "st_gcn_networks.4.residual.0.weight", "st_gcn_networks.7.residual.1.running_var",
              "edge_importance.9", "fcn.weight"):
        assert k in keys
    assert "st_gcn_networks.0.residual.0.weight" not in keys and "st_gcn_networks.1.residual.0.weight" not in keys
    assert tuple(m.state_dict()["st_gcn_networks.0.gcn.conv.weight"].shape) == (64 * 3, 6, 1, 1)
    assert tuple(m.state_dict()["data_bn.weight"].shape) == (6 * 24,)
    # strict round trip; columns of the normalised adjacency sum to 1 (normalize_digraph)
    STGCN(in_channels=6, num_class=40).load_state_dict(m.state_dict(), strict=True)
    a = Graph("smpl").A.sum(0)
    np.testing.assert_allclose(a.sum(0), np.ones(24), rtol=1e-6)
    # the graph built from a dataset's kinematic chains equals ACTOR's SMPL graph for SMPL chains
    smpl_chains = [[0, 2, 5, 8, 11], [0, 1, 4, 7, 10], [0, 3, 6, 9, 12, 15], [9, 14, 17, 19, 21, 23],
                   [9, 13, 16, 18, 20, 22]]
    np.testing.assert_array_equal(Graph("chains", 24, smpl_chains).A, Graph("smpl").A)
    g = MotionDiscriminatorA2M()
    assert sorted(k.split(".")[0] for k in g.state_dict()) .count("recurrent") == 8
    assert tuple(g.state_dict()["recurrent.weight_ih_l0"].shape) == (3 * 128, 72)


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
@pytest.mark.parametrize("kind,network", [("a2m_gru", {}), ("stgcn", {"widths": [8, 8, 16]})])
def test_recognizer_trains_above_chance(tmp_path, monkeypatch, kind, network):
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path))
    torch.set_num_threads(1)
    data = TinyAction()
    net = train_recognizer(data, kind=kind, steps=60, lr=3e-3, batch_size=32, network=network, num_frames=24)
    test = action_split(data, "test")
    torch.manual_seed(0)
    logits, feats = recognizer_outputs(net, *pad_motions(test.motions))
    acc = (logits.argmax(1) == test.labels).mean()
    assert acc > 0.6, acc  # chance 0.25
    assert len(list((tmp_path / "evaluators").glob("*.pt"))) == 1


def test_action2motion_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path))
    torch.set_num_threads(1)
    data = TinyAction()
    net = train_recognizer(data, kind="a2m_gru", steps=60, lr=3e-3, batch_size=32, num_frames=24)
    ctx = RunContext(seed=0, extra={"action_recognizer": net})
    cfg = {"repetitions": 2, "diversity_times": 50, "multimodality_times": 5, "num_frames": 24}
    spec = get_protocol("action2motion")
    real, gen = spec.fn(ClassGenerator(data), data, cfg, ctx)
    _, wrong = spec.fn(ClassGenerator(data, shuffle_labels=True), data, cfg, ctx)
    assert real.variant == "real" and gen.variant == ""
    for key in ("accuracy", "fid_train", "fid_test", "diversity", "multimodality"):
        assert np.isfinite(gen.metrics[key]["value"]) and gen.metrics[key]["ci95"] >= 0
    assert gen.metrics["accuracy"]["value"] > wrong.metrics["accuracy"]["value"]
    assert len(gen.extra["per_repetition"]) == 2
    rec = make_record(method="class_gen", dataset="tiny_action", protocol="action2motion", metrics=gen.metrics,
                      data="synthetic", scale="smoke", seed=0, config=cfg, n_samples=gen.n_samples, extra=gen.extra)
    assert rec["metrics"]["fid_train"]["higher_is_better"] is False


# -- physical plausibility rows -------------------------------------------------------------------

FEET = (7, 8, 10, 11)        # SMPL ankles and feet
HANDS = (20, 21, 22, 23)     # SMPL wrists and hands


def _standing_camera_pose() -> np.ndarray:
    """A standing SMPL-24 pose [24, 3] in a y-down camera frame (as HumanAct12 publishes it): the
    feet 0.9 m below the pelvis, the other joints higher up (smaller y)."""
    pose = np.zeros((24, 3))
    pose[:, 1] = 0.9 - (0.1 + 0.05 * np.arange(24))
    pose[list(FEET), 1] = 0.9
    pose[:, 0] = 0.01 * np.arange(24)
    return pose


class CameraAction(TinyAction):
    """k classes of standing SMPL-24 bodies in a y-down camera frame; class c waves its hands at
    frequency c + 1 (feet still on the floor: the GT rows have no skating, no floating, no foot jerk)."""

    up, fps = "-y", 20.0

    def __init__(self, n=32, k=4, seed=0):
        rng = np.random.default_rng(seed)
        self.num_classes = k
        self._s = {}
        for split in self.split_names:
            motions, labels = [], []
            for i in range(n):
                c, t = i % k, int(rng.integers(20, 31))
                x = np.repeat(_standing_camera_pose()[None], t, axis=0)
                x[:, list(HANDS), 1] -= 0.2 * np.sin(np.arange(t) * (c + 1) / 4.0)[:, None]
                motions.append(x.astype(np.float32))
                labels.append(c)
            self._s[split] = {"motions": motions, "labels": np.array(labels)}


class CameraGenerator:
    """Test-only generator: the standing camera-frame body sliding along x at ``speed`` m/s, lifted
    0.1 m (y - 0.1 in the y-down frame) from frame ``3 n // 4`` when ``lift``."""

    def __init__(self, speed=0.0, lift=False):
        self.speed, self.lift = speed, lift

    def fit(self, dataset):
        pass

    def generate(self, conditions, lengths, steps=None):
        out = np.zeros((len(conditions), max(lengths), 24, 3), np.float32)
        for b, n in enumerate(lengths):
            x = np.repeat(_standing_camera_pose()[None], n, axis=0)
            x[:, :, 0] += self.speed * np.arange(n)[:, None] / 20.0
            if self.lift:
                x[3 * n // 4:, :, 1] -= 0.1
            out[b, :n] = x
        return torch.from_numpy(out)


@pytest.fixture(scope="module")
def camera_recognizer(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("MOTIONREPRO_CACHE", str(tmp_path_factory.mktemp("cache")))
    torch.set_num_threads(1)
    data = CameraAction()
    net = train_recognizer(data, kind="a2m_gru", steps=20, lr=3e-3, batch_size=32, num_frames=24)
    mp.undo()
    return data, net


# a 0.1 m step at frame 18 of 24: third differences 0.1, -0.2, 0.1 m over the 21 jerk frames
STEP_JERK = 0.4 / 21 * 20.0 ** 3


@pytest.mark.parametrize("speed, lift, skating, float_mm, jerk", [
    (0.0, False, 0.0, 0.0, 0.0),
    (2.0, False, 1.0, 0.0, 0.0),                           # both feet on the floor at 2 m/s
    (0.3, False, 0.0, 0.0, 0.0),                           # below 0.5 m/s
    (0.0, True, 0.0, 100.0 * (24 - 18) / 24, STEP_JERK),   # 24-frame clips lifted 0.1 m from frame 18
])
def test_physical_rows_match_the_closed_form(camera_recognizer, speed, lift, skating, float_mm, jerk):
    """Root-centred camera-frame clips: the floor found again per sequence gives the closed forms of
    a body standing, sliding or lifted; constant velocity has zero jerk, a step a known one; the GT
    row (standing, hands waving) neither skates nor floats, and only its hands jerk."""
    data, net = camera_recognizer
    cfg = {"repetitions": 2, "diversity_times": 20, "multimodality_times": 3, "num_frames": 24}
    real, gen = get_protocol("action2motion").fn(CameraGenerator(speed, lift), data, cfg,
                                                 RunContext(seed=0, extra={"action_recognizer": net}))
    g = gen.metrics
    assert g["skating_ratio"]["value"] == pytest.approx(skating)
    assert g["skating_ratio_authors"]["value"] == pytest.approx(skating)   # every clip 24 frames: no padding
    assert g["float_mm"]["value"] == pytest.approx(float_mm)
    assert g["penetrate_mm"]["value"] == 0.0
    # constant velocity: zero jerk up to float32 positions (~1e-7 m of a 2 m path, times 8 * 20^3)
    for group in ("body", "root", "feet", "hands"):
        assert g[f"jerk_{group}"]["value"] == pytest.approx(jerk, abs=0.05), group
    r = real.metrics
    assert r["skating_ratio"]["value"] == 0.0 and r["float_mm"]["value"] == 0.0 and r["penetrate_mm"]["value"] == 0.0
    assert r["jerk_feet"]["value"] == pytest.approx(0.0, abs=1e-6) and r["jerk_hands"]["value"] > 1.0
    assert gen.extra["physical"]["skeleton"] == "smpl24" and gen.extra["physical"]["up"] == "-y"
    assert all("jerk_body" in row for row in gen.extra["per_repetition"] + real.extra["per_repetition"])
    rec = make_record(method="camera", dataset="camera_action", protocol="action2motion", metrics=gen.metrics,
                      data="synthetic", scale="smoke", seed=0, config=cfg, n_samples=gen.n_samples, extra=gen.extra)
    assert rec["metrics"]["float_mm"]["unit"] == "mm" and rec["metrics"]["jerk_body"]["unit"] == "m/s^3"


def test_a_dataset_without_an_up_direction_gets_no_physical_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path))
    torch.set_num_threads(1)
    data = TinyAction()   # no ``up``: which way the floor lies is unknown
    net = train_recognizer(data, kind="a2m_gru", steps=5, lr=3e-3, batch_size=32, num_frames=24)
    cfg = {"repetitions": 2, "diversity_times": 20, "multimodality_times": 3, "num_frames": 24}
    real, gen = get_protocol("action2motion").fn(ClassGenerator(data), data, cfg,
                                                 RunContext(seed=0, extra={"action_recognizer": net}))
    assert not {"skating_ratio", "jerk_body"} & (set(gen.metrics) | set(real.metrics))
    assert "physical" not in gen.extra


class ReplayGenerator:
    """Test-only generator that returns the protocol's own reference clips of repetition ``seed``
    (the test split, in order), so its physical row must equal the GT row."""

    def __init__(self, data, seed, num_frames):
        _, self.clips = draw_clips(action_split(data, "train"), action_split(data, "test"), num_frames, seed)
        self.pos = 0

    def fit(self, dataset):
        pass

    def generate(self, conditions, lengths, steps=None):
        clips = self.clips[self.pos:self.pos + len(conditions)]
        self.pos += len(conditions)
        assert [len(c) for c in clips] == list(lengths)
        return pad_motions(clips)[0]


def test_physical_gt_rows_of_the_synthetic_set(tmp_path, monkeypatch):
    """synth_action (y up, HumanAct12 layout): the GT row of the procedural bodies, which stand on
    their feet, has no penetration and floats little; a generator replaying the GT clips gets the
    GT row exactly."""
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path))
    torch.set_num_threads(1)
    data = load_dataset(load_config("dataset", "synth_action", "smoke"))
    assert data.up == "+y" and data.fps == 20.0
    net = train_recognizer(data, kind="a2m_gru", steps=5, lr=3e-3, batch_size=32, num_frames=60)
    cfg = {"repetitions": 1, "diversity_times": 20, "multimodality_times": 3}
    real, gen = get_protocol("action2motion").fn(ReplayGenerator(data, 0, 60), data, cfg,
                                                 RunContext(seed=0, extra={"action_recognizer": net}))
    keys = ("skating_ratio", "skating_ratio_authors", "penetrate_mm", "float_mm", "jerk_body", "jerk_root",
            "jerk_feet", "jerk_hands")
    for k in keys:
        assert gen.metrics[k]["value"] == pytest.approx(real.metrics[k]["value"], rel=1e-9, abs=1e-12), k
    r = {k: real.metrics[k]["value"] for k in keys}
    assert r["penetrate_mm"] == 0.0 and 0.0 < r["float_mm"] < 50.0   # read upside down it would be ~1 m
    assert 0.0 <= r["skating_ratio"] < 0.5 and r["jerk_body"] > 0.0
    assert real.extra["physical"]["skeleton"] == "smpl24"


class NoisyReplay(ClassGenerator):
    """The same motions as ClassGenerator, but drawing ``draws`` numbers from the global torch RNG
    per call (a diffusion sampler does; a submission replayed from files does not)."""

    def __init__(self, data, draws):
        super().__init__(data)
        self.draws = draws

    def generate(self, conditions, lengths, steps=None):
        torch.randn(self.draws)
        return super().generate(conditions, lengths, steps)


def test_recogniser_noise_does_not_depend_on_the_generators_draws(tmp_path, monkeypatch):
    """The evaluator's random GRU state comes from its own seeded streams: the metrics of the same
    motions are identical whether the generator drew 0 or 1000 numbers from the global RNG (on a
    shared stream the generated set's recogniser pass would meet different initial states)."""
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path))
    torch.set_num_threads(1)
    data = TinyAction()
    net = train_recognizer(data, kind="a2m_gru", steps=20, lr=3e-3, batch_size=32, num_frames=24)
    ctx = RunContext(seed=0, extra={"action_recognizer": net})
    cfg = {"repetitions": 2, "diversity_times": 50, "multimodality_times": 5, "num_frames": 24}
    spec = get_protocol("action2motion")
    quiet = spec.fn(NoisyReplay(data, 0), data, cfg, ctx)
    noisy = spec.fn(NoisyReplay(data, 1000), data, cfg, ctx)
    assert [r.metrics for r in quiet] == [r.metrics for r in noisy]
    # and the initial state is still random (the official initHidden), not zeros
    x, n = pad_motions(action_split(data, "test").motions[:4])
    g0, g1 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    assert not np.array_equal(recognizer_outputs(net, x, n, generator=g0)[1], recognizer_outputs(net, x, n, generator=g1)[1])
