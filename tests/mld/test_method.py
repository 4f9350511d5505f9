"""MLD method plumbing on tiny in-test datasets: fit, generate, reconstruct, checkpoints, actions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluators.core.config import load_config
from methods import get_method
from methods.base import MotionGenerator, Reconstructor

TINY = {"vae": {"latent_dim": 16, "ff_size": 32, "num_layers": 1, "num_heads": 2, "steps": 3, "batch_size": 4},
        "denoiser": {"ff_size": 32, "num_layers": 1, "num_heads": 2, "steps": 3, "batch_size": 4},
        "diffusion": {"steps": 4}, "render": {"n": 1}}


class TinyText:
    """Dataset object with the ``MotionTextDataset`` surface MLD uses (torch_dataset, mean, std)."""

    def __init__(self, n=8, dim=263):
        rng = np.random.default_rng(0)
        self.items = [{"motion": rng.normal(size=(int(rng.integers(12, 20)), dim)).astype(np.float32) * 0.1,
                       "caption": ["a person walks", "a person jumps"][i % 2]} for i in range(n)]
        self.mean = np.zeros(dim, np.float32)
        self.std = np.ones(dim, np.float32)

    def torch_dataset(self, split, normalise=True):
        assert split == "train" and normalise is False  # MLD normalises with its own statistics
        return self.items


def _cfg(**extra):
    cfg = load_config("method", "mld", "smoke")
    for k, v in TINY.items():
        cfg[k] = {**cfg.get(k, {}), **v} if isinstance(v, dict) else v
    cfg.update(extra)
    return cfg


def test_registered_with_both_capabilities():
    m = get_method("mld")(_cfg(), seed=0)
    assert isinstance(m, MotionGenerator) and isinstance(m, Reconstructor)
    s = m.sampler_settings()
    assert s["steps"] == 4 and s["guidance_scale"] == 7.5 and s["eta"] == 0.0
    card = m.summary()
    assert card["params"]["total"] == card["params"]["vae"] + card["params"]["denoiser"]
    assert "text_encoder" in card["frozen_params"] and card["gmacs"]["denoiser_step"] > 0


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_fit_generate_checkpoint_roundtrip(tmp_path):
    cls = get_method("mld")
    m = cls(_cfg(), seed=0, workdir=tmp_path)
    m.fit(TinyText())
    assert (tmp_path / "vae" / "last.pt").is_file() and (tmp_path / "denoiser" / "last.pt").is_file()
    gifs = list((tmp_path / "samples").glob("*.gif"))
    try:
        import evaluators.datasets.motion.render  # noqa: F401
        assert len(gifs) == 1
    except ImportError:
        assert gifs == []
    z = torch.randn(2, 1, 16)
    out = m.generate(["a person walks", None], [10, 6], z_T=z)
    assert out.shape == (2, 10, 263) and (out[1, 6:] == 0).all() and torch.isfinite(out).all()
    m.save_checkpoint(tmp_path / "mld.pt")
    m2 = cls(_cfg(), seed=5)
    m2.load_checkpoint(tmp_path / "mld.pt")
    torch.testing.assert_close(m2.generate(["a person walks", None], [10, 6], z_T=z), out)
    torch.testing.assert_close(m2.reconstruct(out), m.reconstruct(out))


def test_generate_without_statistics_says_what_to_do():
    m = get_method("mld")(_cfg(), seed=0)
    with pytest.raises(RuntimeError, match="stats_dir"):
        m.generate(["x"], [8])


class TinyAction:
    num_classes = 3

    def __init__(self):
        rng = np.random.default_rng(1)
        self.items = [{"joints": rng.normal(size=(10, 5, 3)).astype(np.float32), "action": i % 3} for i in range(6)]

    def torch_dataset(self, split):
        return self.items


def test_action_condition_fits_and_returns_joints():
    m = get_method("mld")(_cfg(condition="action"), seed=0)
    assert m.task == "action2motion"
    m.fit(TinyAction())
    assert m.nfeats == 15 and m.nclasses == 3
    out = m.generate([0, 2, None], [10, 7, 9])
    assert out.shape == (3, 10, 5, 3) and (out[1, 7:] == 0).all()
    assert m.reconstruct(out).shape == out.shape


def _tiny_clip(folder):
    """A randomly initialised CLIP text tower + character-level tokenizer saved like a real one."""
    import json

    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer

    chars = "abcdefghijklmnopqrstuvwxyz"
    vocab = {t: i for i, t in enumerate([*chars, *(c + "</w>" for c in chars), "<|startoftext|>", "<|endoftext|>"])}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=16).save_pretrained(folder)
    cfg = CLIPTextConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=16, projection_dim=8,
                         bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
                         pad_token_id=vocab["<|endoftext|>"])
    CLIPTextModelWithProjection(cfg).save_pretrained(folder)


def test_clip_text_encoder_from_a_local_folder(tmp_path):
    _tiny_clip(tmp_path)
    m = get_method("mld")(_cfg(text_encoder={"kind": "clip", "clip_path": str(tmp_path)}), seed=0)
    assert m.denoiser.text_encoded_dim == 8  # read from the folder's config.json
    emb = m.text_encoder(["a person walks", "", "a person walks"])
    assert emb.shape == (3, 1, 8) and torch.equal(emb[0], emb[2]) and not torch.equal(emb[0], emb[1])
    m.set_normalization(np.zeros(263), np.ones(263))
    assert m.generate(["a person walks"], [8]).shape == (1, 8, 263)


def test_clip_without_local_weights_is_refused():
    m = get_method("mld")(_cfg(text_encoder={"kind": "clip", "clip_path": "/nonexistent/clip"}), seed=0)
    with pytest.raises(ValueError, match="nothing is downloaded"):
        m.text_encoder  # noqa: B018
