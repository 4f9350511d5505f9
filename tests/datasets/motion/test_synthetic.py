"""synth_t2m / synth_action: written in the published formats, read back by the real loaders."""

from __future__ import annotations

import hashlib
import pickle
import random

import numpy as np
import torch

from evaluators.datasets.motion.action import actor_frame_indices, read_humanact12
from evaluators.datasets.motion.humanml3d import feature_slices, recover_from_ric
from evaluators.datasets.motion.synth_action import generate as gen_action
from evaluators.datasets.motion.synth_t2m import compute_mean_std, generate, swap_left_right
from evaluators.datasets.motion.t2m_text import read_caption_file
from tests.datasets.motion.conftest import SMALL_ACTION, SMALL_T2M


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


def test_synth_t2m_split_sizes_and_layout(synth_t2m):
    ds = synth_t2m
    assert ds.source == "synthetic" and ds.feat_dim == 263 and ds.split_names == ("train", "val", "test", "train_val",
                                                                                   "all")
    sizes = {s: len(ds.split_ids(s)) for s in ds.split_names}
    assert sizes == {"train": 16, "val": 6, "test": 8, "train_val": 22, "all": 30}  # n per split x 2 (M twins)
    assert sum(i.startswith("M") for i in ds.split_ids("all")) == 15
    train = ds.split("train")
    subclips = [s for s in train if "_" in s.name]
    assert len(train) == 16 + len(subclips)
    assert all(40 <= s.length < 200 for s in train)
    assert all(len(s.texts) >= 3 for s in train if "_" not in s.name)


def test_synth_t2m_files_are_consistent(synth_t2m):
    root = synth_t2m.root
    train = [s for s in synth_t2m.split("train") if "_" not in s.name]
    mean, std = compute_mean_std([s.motion for s in train], 22)
    np.testing.assert_allclose(np.load(root / "Mean.npy"), mean, atol=1e-6)
    np.testing.assert_allclose(np.load(root / "Std.npy"), std, atol=1e-6)
    for s in train[:4]:
        np.testing.assert_allclose(np.load(root / "new_joints" / f"{s.name}.npy"), recover_from_ric(s.motion, 22),
                                   atol=1e-6)
    # mirrored twin: sideways velocity and yaw rate flip, captions have left/right swapped
    a, m = np.load(root / "new_joint_vecs" / "000000.npy"), np.load(root / "new_joint_vecs" / "M000000.npy")
    assert a.shape == m.shape
    rv = feature_slices(22)["rot_vel"]
    scale = np.abs(a[:, 1:3]).max()
    assert np.abs(a[:, rv] + m[:, rv]).max() < 1e-3 + 0.02 * np.abs(a[:, rv]).max()   # yaw rate flips
    assert np.abs(a[:, 1] + m[:, 1]).max() < 0.02 * scale                           # sideways flips
    assert np.abs(a[:, 2] - m[:, 2]).max() < 0.02 * scale                           # forward kept
    ca, cm = read_caption_file(root / "texts" / "000000.txt"), read_caption_file(root / "texts" / "M000000.txt")
    assert [swap_left_right(c.caption) for c in ca] == [c.caption for c in cm]


def test_synth_t2m_captions_are_pos_tagged_and_describe_primitives(synth_t2m):
    caps = [c for s in synth_t2m.split("train") for c in s.texts]
    assert all(c.tokens and all("/" in t for t in c.tokens) for c in caps)
    verbs = {t.split("/")[0] for c in caps for t in c.tokens if t.endswith("/VERB")}
    assert verbs & {"walk", "run", "jump", "wave", "kick", "squat", "sit", "turn", "raise", "step", "stand"}


def test_synth_t2m_torch_dataset(synth_t2m):
    td = synth_t2m.torch_dataset("train", max_len=196)
    batch = synth_t2m.collate([td[i] for i in range(4)])
    assert batch["motion"].shape == (4, 196, 263) and torch.isfinite(batch["motion"]).all()
    assert all(n % 4 == 0 and 36 <= n <= 100 for n in batch["length"].tolist())


def test_synth_t2m_byte_identical_per_seed(tmp_path):
    cfg = {**SMALL_T2M, "n_train": 2, "n_val": 1, "n_test": 1}
    a, b = generate(tmp_path / "a", cfg), generate(tmp_path / "b", cfg)
    c = generate(tmp_path / "c", {**cfg, "seed": cfg["seed"] + 1})
    assert _digest(a) == _digest(b) != _digest(c)


def test_synth_action_splits_labels_and_format(synth_action):
    ds = synth_action
    assert ds.num_classes == 12 and ds.class_names[8] == "turn steering wheel" and ds.joints_num == 24
    assert {k: len(ds.split(k)) for k in ds.split_names} == {"train": 36, "test": 12, "all": 48}
    assert np.bincount([s.label for s in ds.split("all")], minlength=12).tolist() == [4] * 12
    names = {s.name for s in ds.split("train")}
    assert not names & {s.name for s in ds.split("test")}
    item = ds.torch_dataset("train", num_frames=60)[0]
    assert item["joints"].shape == (60, 24, 3) and torch.all(item["joints"][0, 0] == 0)
    batch = ds.collate([ds.torch_dataset("test", num_frames=30)[i] for i in range(3)])
    assert batch["joints"].shape == (3, 30, 24, 3)


def test_synth_action_pickle_byte_identical_and_readable(tmp_path):
    a = gen_action(tmp_path / "a" / "humanact12poses.pkl", SMALL_ACTION)
    b = gen_action(tmp_path / "b" / "humanact12poses.pkl", SMALL_ACTION)
    assert a.read_bytes() == b.read_bytes()
    raw = pickle.loads(a.read_bytes())
    assert set(raw) == {"poses", "joints3D", "y"} and raw["poses"][0].shape[1] == 72
    assert len(read_humanact12(a)) == 48


def test_synth_action_classes_are_distinguishable(synth_action):
    """Nearest-class-mean on simple motion statistics beats chance by a wide margin (classes differ)."""
    iu = np.triu_indices(24, 1)

    def feat(j):  # heading-invariant: joint-pair distances over time, root speed and height
        d = np.linalg.norm(j[:, :, None] - j[:, None], axis=-1)[:, iu[0], iu[1]]
        speed = np.linalg.norm(np.diff(j[:, 0, [0, 2]], axis=0), axis=-1)
        return np.concatenate([d.mean(0), d.std(0), [speed.mean() * 10, j[:, 0, 1].std() * 10]])
    tr, te = synth_action.split("train"), synth_action.split("test")
    x, y = np.stack([feat(s.joints) for s in tr]), np.array([s.label for s in tr])
    cm = np.stack([x[y == k].mean(0) for k in range(12)])
    pred = [int(np.argmin(((cm - feat(s.joints)) ** 2).sum(1))) for s in te]
    acc = np.mean(np.array(pred) == np.array([s.label for s in te]))
    assert acc > 0.5


def test_actor_conseq_sampling():
    rng = random.Random(0)
    ix = actor_frame_indices(20, 60, rng)
    assert ix.tolist() == list(range(20)) + [19] * 40                 # too short: pad with the last frame
    for _ in range(20):
        ix = actor_frame_indices(100, 60, rng)
        assert len(ix) == 60 and np.all(np.diff(ix) == 1) and 0 <= ix[0] <= 100 - 59 - 2
    ix = actor_frame_indices(100, 60, rng, sampling_step=2)          # 2*59 >= 100 -> step_max = 1
    assert np.all(np.diff(ix) == 1)
    ix = actor_frame_indices(300, 60, rng, sampling_step=3)
    assert np.all(np.diff(ix) == 3) and ix[-1] < 300
