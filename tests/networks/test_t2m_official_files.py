"""The official T2M evaluator loaded strictly: every file required, one root variable, all-frames conv.

Independent references: the official layouts (text-to-motion / MoMask / MLD READMEs, MDM's
``dataset/t2m_mean.npy``) written by hand here, and the official ``MovementConvEncoder`` forward
written out with ``torch.nn.functional.conv1d`` over all T frames.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from evaluators.networks.t2m_evaluator import (
    ROOT_ENV,
    T2MEvaluator,
    evaluator_config,
    locate_official_files,
    resolve_official_files,
)
from tests.networks._tiny import TINY_EVAL_CFG


def _write_glove(folder):
    folder.mkdir(parents=True, exist_ok=True)
    words = ["sos", "eos", "unk", "walk", "forward", "a", "person"]
    rng = np.random.default_rng(0)
    np.save(folder / "our_vab_data.npy", rng.normal(size=(len(words), 300)).astype(np.float32))
    with open(folder / "our_vab_words.pkl", "wb") as fh:
        pickle.dump(words, fh)
    with open(folder / "our_vab_idx.pkl", "wb") as fh:
        pickle.dump({w: i for i, w in enumerate(words)}, fh)
    return folder


def _official_tree(root, dim=263, d="t2m", meta="Comp_v6_KLD01", mdm=False):
    """``root/checkpoints/<d>/text_mot_match/model/finest.tar`` + meta mean/std (or MDM's) + ``root/glove``."""
    ev = T2MEvaluator(evaluator_config(dim))
    ck = root / "checkpoints" / d / "text_mot_match" / "model" / "finest.tar"
    ck.parent.mkdir(parents=True)
    torch.save(ev.official_state_dict(), ck)
    rng = np.random.default_rng(1)
    if mdm:
        (root / "dataset").mkdir()
        np.save(root / "dataset" / f"{d}_mean.npy", rng.normal(size=dim))
        np.save(root / "dataset" / f"{d}_std.npy", rng.uniform(0.5, 2, dim))
    else:
        m = root / "checkpoints" / d / meta / "meta"
        m.mkdir(parents=True)
        np.save(m / "mean.npy", rng.normal(size=dim))
        np.save(m / "std.npy", rng.uniform(0.5, 2, dim))
    _write_glove(root / "glove")
    return ck


def test_checkpoint_without_glove_mean_std_is_an_error_naming_them(tmp_path):
    ck = _official_tree(tmp_path)
    meta = ck.parents[2] / "Comp_v6_KLD01" / "meta"
    # before: silently MiniLM word vectors and unnormalised motions
    with pytest.raises(FileNotFoundError, match="glove_dir") as e:
        T2MEvaluator.from_official(ck, "humanml3d")
    assert "evaluator.mean" in str(e.value) and "evaluator.std" in str(e.value)
    with pytest.raises(FileNotFoundError, match="our_vab_idx.pkl"):
        (tmp_path / "glove" / "our_vab_idx.pkl").unlink()
        T2MEvaluator.from_official(ck, "humanml3d", glove_dir=tmp_path / "glove", mean_path=meta / "mean.npy",
                                   std_path=meta / "std.npy")
    _write_glove(tmp_path / "glove")
    with pytest.raises(FileNotFoundError, match="nope.npy"):
        T2MEvaluator.from_official(ck, "humanml3d", glove_dir=tmp_path / "glove", mean_path=meta / "mean.npy",
                                   std_path=meta / "nope.npy")
    ev = T2MEvaluator.from_official(ck, "humanml3d", glove_dir=tmp_path / "glove", mean_path=meta / "mean.npy",
                                    std_path=meta / "std.npy")
    np.testing.assert_allclose(ev.mean.numpy(), np.load(meta / "mean.npy").astype(np.float32))
    prov = ev.provenance()
    assert prov["evaluator"]["id"] == "official" and len(prov["evaluator"]["sha256"]) == 64
    assert prov["word_vectors"]["id"] == "glove"


@pytest.mark.parametrize("layout", ["t2m", "momask", "mdm", "mld_deps"])
def test_one_root_variable_locates_every_file(tmp_path, layout):
    root = tmp_path / "eval"
    root.mkdir()
    if layout == "mld_deps":  # MLD: deps/t2m/t2m/text_mot_match/..., deps/glove beside deps/t2m
        deps = tmp_path / "deps"
        ck = _official_tree(deps)
        (deps / "checkpoints").rename(deps / "t2m")
        root = deps / "t2m"
    else:
        ck = _official_tree(root, meta="Comp_v6_KLD005" if layout == "momask" else "Comp_v6_KLD01",
                            mdm=layout == "mdm")
    found = locate_official_files(root, "humanml3d")
    assert all(found.values()), found
    assert found["checkpoint"].endswith("text_mot_match/model/finest.tar")
    cfg = resolve_official_files({"checkpoint": None, "glove_dir": None, "mean": None, "std": None},
                                 "humanml3d", env={ROOT_ENV: str(root)})
    ev = T2MEvaluator.from_official(cfg["checkpoint"], "humanml3d", glove_dir=cfg["glove_dir"],
                                    mean_path=cfg["mean"], std_path=cfg["std"])
    assert ev.meta["source"] == "official" and ck.name == "finest.tar"
    # explicit config values win over the root
    other = tmp_path / "other.npy"
    np.save(other, np.zeros(263))
    assert resolve_official_files({"mean": str(other)}, "humanml3d", env={ROOT_ENV: str(root)})["mean"] == str(other)
    # the kit evaluator is not there: one error naming what is missing
    with pytest.raises(FileNotFoundError, match="kit/text_mot_match/model/finest.tar"):
        resolve_official_files({}, "kit", env={ROOT_ENV: str(root)})


def test_build_evaluator_with_root_but_missing_std_names_it(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from evaluators.protocols._t2m_helpers import build_evaluator

    _official_tree(tmp_path)
    (tmp_path / "checkpoints" / "t2m" / "Comp_v6_KLD01" / "meta" / "std.npy").unlink()
    monkeypatch.setenv(ROOT_ENV, str(tmp_path))
    ctx = SimpleNamespace(extra={}, device="cpu", data_source="real")
    with pytest.raises(FileNotFoundError, match="evaluator.std"):
        build_evaluator(None, {"config": "humanml3d"}, ctx)


def _official_movement(enc, x):
    """Official MovementConvEncoder forward over ALL T frames, written out with F.conv1d (eval: no dropout)."""
    h = x.permute(0, 2, 1)
    c1, c2 = enc.main[0], enc.main[3]
    h = F.leaky_relu(F.conv1d(h, c1.weight, c1.bias, stride=2, padding=1), 0.2)
    h = F.leaky_relu(F.conv1d(h, c2.weight, c2.bias, stride=2, padding=1), 0.2)
    return F.linear(h.permute(0, 2, 1), enc.out_net.weight, enc.out_net.bias)


def test_length_not_multiple_of_4_embeds_over_all_frames():
    torch.manual_seed(0)
    ev = T2MEvaluator(evaluator_config("humanml3d", **TINY_EVAL_CFG)).eval()
    x = torch.randn(3, 50, 263)
    lens = [50, 44, 21]
    x = x * (torch.arange(50)[None, :, None] < torch.tensor(lens)[:, None, None])
    with torch.no_grad():
        mov = _official_movement(ev.movement_encoder, x[..., :-4])
        assert mov.shape[1] == 12
        want = ev.motion_encoder(mov, torch.tensor(lens) // 4)
        got = ev.motion_embedding_normalized(x, lens)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_length_below_unit_is_refused():
    ev = T2MEvaluator(evaluator_config("humanml3d", **TINY_EVAL_CFG)).eval()
    with pytest.raises(ValueError, match=r"\[3\] are below the evaluator's unit_length 4"):
        ev.embed_motion(torch.randn(2, 40, 263), [40, 3])
