"""``synth_t2m``: a seeded synthetic text-to-motion set written in the published HumanML3D layout.

Each motion is 1–3 composable primitives (walk, run, jump, wave, kick, squat, sit, turn, ...;
see ``motion_body.py``) with random tempo, turning angle, body size, start position and
heading, rendered as 22-joint positions and converted by the real ``extract_features``. Its
captions are composed from the same primitives ("a person walks forward and then waves with
the right hand"), POS-tagged with spaCy exactly as HumanML3D's ``text_process.py`` did, several
per motion; some motions also carry a caption for one primitive's time span, which the loader
turns into a sub-clip sample. Every motion has a mirrored ``M`` twin (joints mirrored, "left" and
"right" swapped in its captions) in the same split, as in HumanML3D. ``Mean.npy``/``Std.npy``
are computed on the training motions the way HumanML3D's ``cal_mean_variance`` does (std averaged
within each feature group). The folder is then read by the very same ``MotionTextDataset``.

Output: ``cache_root()/synth_t2m/<cache_key>/HumanML3D/`` (byte-identical for the same options),
built in a temporary folder and renamed into place.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from evaluators.datasets.base import register_dataset
from evaluators.datasets.cache import build_staged, cache_key, cache_problem, cache_root, valid_or_discard
from evaluators.datasets.motion.body import PHRASES, PRIMITIVES, compose, pose_clip
from evaluators.datasets.motion.humanml3d import (
    HUMANML3D_FPS,
    extract_features,
    feature_slices,
    load_motion_text,
    recover_from_ric,
)
from evaluators.datasets.motion.kinematics import T2M, mirror_joints
from evaluators.datasets.motion.t2m_text import Caption, format_caption_line, tag_captions

log = logging.getLogger(__name__)

VERSION = 2
DEFAULTS = {"seed": 0, "n_train": 150, "n_val": 25, "n_test": 50, "min_frames": 40, "max_frames": 100,
            "captions_per_motion": 3, "max_primitives": 3, "subclip_prob": 0.15, "mirror": True}
SUBJECTS = ("a person", "someone", "the person", "a man", "a woman", "the figure")
JOINERS = (" and then ", ", then ", " and ")


def _params(cfg: dict) -> dict:
    return {k: type(v)(cfg.get(k, v)) for k, v in DEFAULTS.items()}


def swap_left_right(text: str) -> str:
    """Mirror a caption as HumanML3D did for its ``M`` samples: 'left' <-> 'right'."""
    return text.replace("left", "\0").replace("right", "left").replace("\0", "right")


def _phrase(name: str, speed: float, rng: np.random.Generator) -> str:
    p = str(rng.choice(PHRASES[name]))
    if name in ("walk", "run", "walk_back") and speed < 0.8:
        p += " slowly"
    elif name in ("walk", "run", "walk_back") and speed > 1.25:
        p += " quickly"
    return p


def _caption(names: list[str], speeds: list[float], rng: np.random.Generator) -> str:
    parts = [_phrase(n, s, rng) for n, s in zip(names, speeds)]
    if len(parts) == 1:
        body = parts[0]
    elif len(parts) == 2:
        body = parts[0] + str(rng.choice(JOINERS)) + parts[1]
    else:
        body = ", ".join(parts[:-1]) + " and then " + parts[-1]
    return f"{rng.choice(SUBJECTS)} {body}."


def _motion(rng: np.random.Generator, p: dict) -> tuple[np.ndarray, list[str], list[float], list[int]]:
    """Raw joints [T+1, 22, 3] and the primitive names/speeds/frame counts that made them."""
    total = int(rng.integers(p["min_frames"], p["max_frames"] + 1)) + 1
    k = int(rng.integers(1, p["max_primitives"] + 1))
    k = max(1, min(k, total // 20))
    # k pieces of >= 20 frames each: distribute the slack at random
    extra = rng.multinomial(total - 20 * k, np.ones(k) / k)
    lens = (20 + extra).astype(int).tolist()
    names, speeds = [], []
    for _ in range(k):
        name = str(rng.choice([n for n in PRIMITIVES if not names or n != names[-1]]))
        names.append(name)
        speeds.append(float(rng.uniform(0.65, 1.4)))
    tracks = compose(list(zip(names, lens, speeds)), rng)
    scale = rng.uniform(0.85, 1.15) * rng.uniform(0.95, 1.05, size=22)
    joints = pose_clip(tracks, scale)
    yaw = rng.uniform(-np.pi, np.pi)
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    joints = joints @ rot.T + np.array([rng.uniform(-2, 2), 0.0, rng.uniform(-2, 2)])
    return joints, names, speeds, lens


def compute_mean_std(features: list[np.ndarray], joints_num: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and group-averaged Std [D] of stacked features (HumanML3D ``cal_mean_variance``)."""
    data = np.concatenate(features, axis=0).astype(np.float64)
    mean, std = data.mean(axis=0), data.std(axis=0)
    for sl in feature_slices(joints_num).values():
        std[sl] = std[sl].mean()
    return mean.astype(np.float32), np.maximum(std, 1e-6).astype(np.float32)


def generate(out_dir: str | Path, cfg: dict | None = None) -> Path:
    """Write the synthetic set to ``out_dir`` (must not exist) and return it.

    Everything is written into a hidden temporary sibling folder that is renamed onto
    ``out_dir`` only when complete, so a killed run never leaves a half-written dataset (the
    files inside skip the per-file fsync of ``evaluators.core.io``: the folder rename is the atomic
    step, and fsyncing ~3000 small files dominated the generation time).
    """
    p = _params(cfg or {})
    out = Path(out_dir)
    if out.exists():
        raise FileExistsError(f"{out} already exists")
    rng = np.random.default_rng(p["seed"])
    splits = {"train": p["n_train"], "val": p["n_val"], "test": p["n_test"]}
    records = []  # (split, id, feats, captions(str, start, end))
    train_feats = []
    idx = 0
    for split, n in splits.items():
        for _ in range(n):
            joints, names, speeds, lens = _motion(rng, p)
            caps = [(_caption(names, speeds, rng), 0.0, 0.0) for _ in range(p["captions_per_motion"])]
            starts = np.cumsum([0] + lens[:-1])
            for name, speed, a, ln in zip(names, speeds, starts, lens):
                # a caption for one primitive's span becomes a sub-clip sample when it is long enough
                end = min(a + ln, len(joints) - 1)  # features have one frame fewer than joints
                if len(names) > 1 and end - a >= p["min_frames"] and rng.random() < p["subclip_prob"]:
                    caps.append((_caption([name], [speed], rng), a / HUMANML3D_FPS, end / HUMANML3D_FPS))
            variants = [(f"{idx:06d}", joints, caps)]
            if p["mirror"]:
                variants.append((f"M{idx:06d}", mirror_joints(T2M, joints),
                                 [(swap_left_right(c), s, e) for c, s, e in caps]))
            for sid, j, cs in variants:
                feats = extract_features(j)
                records.append((split, sid, feats, cs))
                if split == "train":
                    train_feats.append(feats)
            idx += 1
    tokens = iter(tag_captions([c for *_, cs in records for c, _, _ in cs]))
    def write(tmp: Path) -> None:
        for sub in ("new_joint_vecs", "new_joints", "texts"):
            (tmp / sub).mkdir()
        for _split, sid, feats, cs in records:
            np.save(tmp / "new_joint_vecs" / f"{sid}.npy", feats)
            np.save(tmp / "new_joints" / f"{sid}.npy", recover_from_ric(feats, 22))
            lines = [format_caption_line(Caption(c, next(tokens), float(s), float(e))) for c, s, e in cs]
            (tmp / "texts" / f"{sid}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        mean, std = compute_mean_std(train_feats, 22)
        np.save(tmp / "Mean.npy", mean)
        np.save(tmp / "Std.npy", std)
        ids = {s: [sid for sp, sid, *_ in records if sp == s] for s in splits}
        ids["train_val"] = ids["train"] + ids["val"]
        ids["all"] = ids["train"] + ids["val"] + ids["test"]
        for name, lst in ids.items():
            (tmp / f"{name}.txt").write_text("\n".join(lst) + "\n", encoding="utf-8")

    build_staged(out, write)  # sizes + checksums (manifest), checked when the cache is opened
    return out


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()  # only succeeds when empty (another process may be filling it)
    except OSError:
        pass


def ensure(cfg: dict | None = None) -> Path:
    """The cached synthetic HumanML3D folder for these options (generated on first use)."""
    p = _params(cfg or {})
    final = cache_root() / "synth_t2m" / cache_key("synth_t2m", VERSION, p) / "HumanML3D"
    if valid_or_discard(final, "synth_t2m"):  # sizes + checksums (a damaged copy is rebuilt, one warning)
        return final
    try:
        generate(final, p)
    except OSError:
        if cache_problem(final) is not None:  # lost a race only if the winner finished
            _remove_if_empty(final.parent)
            raise
    except BaseException:
        _remove_if_empty(final.parent)  # no empty <key>/ folder after a failed build
        raise
    log.info("synth_t2m written to %s", final)
    return final


@register_dataset("synth_t2m", task="text2motion", source="synthetic")
def load(cfg: dict):
    """Generate (or reuse) the synthetic set, then read it with the real HumanML3D loader."""
    root = ensure(cfg)
    return load_motion_text({**cfg, "root": str(root), "source": "synthetic"}, joints_num=22,
                            fps=HUMANML3D_FPS, min_len=int(cfg.get("min_motion_length", 40)))
