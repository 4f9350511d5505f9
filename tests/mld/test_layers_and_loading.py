"""MLD building blocks against PyTorch's reference layers, paper sizes, official-checkpoint loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from evaluators.core.config import load_config
from methods.mld.convert import convert_official, infer_sizes
from methods.mld.layers import TransformerDecoderLayer, TransformerEncoderLayer, lengths_to_mask
from methods.mld.method import MLD

D, FF, H = 256, 1024, 4


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_matches_torch_reference(norm_first):
    """Our SDPA layer == nn.TransformerEncoderLayer (the official layer's math) with the same weights."""
    ours = TransformerEncoderLayer(32, 4, 64, 0.0, "gelu", normalize_before=norm_first).eval()
    ref = nn.TransformerEncoderLayer(32, 4, 64, 0.0, activation="gelu", batch_first=True, norm_first=norm_first).eval()
    ref.load_state_dict(ours.state_dict(), strict=True)  # identical key names and shapes
    x = torch.randn(3, 7, 32)
    pad = ~lengths_to_mask([7, 5, 2], 7)
    with torch.no_grad():
        a = ours(x, pad)
        b = ref(x, src_key_padding_mask=pad)
    valid = ~pad  # torch's fast path may zero padded outputs; compare real positions
    torch.testing.assert_close(a[valid], b[valid], atol=1e-5, rtol=1e-5)


def test_decoder_layer_matches_torch_reference():
    ours = TransformerDecoderLayer(32, 4, 64, 0.0, "gelu").eval()
    ref = nn.TransformerDecoderLayer(32, 4, 64, 0.0, activation="gelu", batch_first=True).eval()
    ref.load_state_dict(ours.state_dict(), strict=True)
    tgt, mem = torch.randn(2, 6, 32), torch.randn(2, 3, 32)
    pad = ~lengths_to_mask([6, 4], 6)
    with torch.no_grad():
        torch.testing.assert_close(ours(tgt, mem, pad), ref(tgt, mem, tgt_key_padding_mask=pad), atol=1e-5, rtol=1e-5)


# ---- the official module definitions, written out independently of our code ------------------
# Source: mld/models/operator/cross_attention.py (DETR layers on nn.MultiheadAttention,
# SkipTransformerEncoder/Decoder), mld_vae.py (MldVae, MLP_DIST False -> 2n distribution tokens,
# PositionEmbeddingLearned1D pe [500, 1, d]), mld_denoiser.py (MldDenoiser, condition "text",
# text_encoded_dim 768: Timesteps (no params) + TimestepEmbedding(768, d) + emb_proj = ReLU, Linear).

def _attn(p, d):
    return {f"{p}.in_proj_weight": (3 * d, d), f"{p}.in_proj_bias": (3 * d,), f"{p}.out_proj.weight": (d, d),
            f"{p}.out_proj.bias": (d,)}


def _layer(p, d, ff, decoder):
    keys = {**_attn(f"{p}.self_attn", d), f"{p}.linear1.weight": (ff, d), f"{p}.linear1.bias": (ff,),
            f"{p}.linear2.weight": (d, ff), f"{p}.linear2.bias": (d,)}
    norms = 3 if decoder else 2
    if decoder:
        keys.update(_attn(f"{p}.multihead_attn", d))
    for i in range(1, norms + 1):
        keys.update({f"{p}.norm{i}.weight": (d,), f"{p}.norm{i}.bias": (d,)})
    return keys


def _skip_stack(p, d, ff, layers, decoder):
    nb = (layers - 1) // 2
    keys = {}
    for i in range(nb):
        keys.update(_layer(f"{p}.input_blocks.{i}", d, ff, decoder))
        keys.update(_layer(f"{p}.output_blocks.{i}", d, ff, decoder))
        keys.update({f"{p}.linear_blocks.{i}.weight": (d, 2 * d), f"{p}.linear_blocks.{i}.bias": (d,)})
    keys.update(_layer(f"{p}.middle_block", d, ff, decoder))
    keys.update({f"{p}.norm.weight": (d,), f"{p}.norm.bias": (d,)})
    return keys


def official_keys(nfeats=263, d=D, ff=FF, layers=9, text_dim=768, n=1):
    vae = {"vae.query_pos_encoder.pe": (500, 1, d), "vae.query_pos_decoder.pe": (500, 1, d),
           "vae.global_motion_token": (2 * n, d), "vae.skel_embedding.weight": (d, nfeats),
           "vae.skel_embedding.bias": (d,), "vae.final_layer.weight": (nfeats, d), "vae.final_layer.bias": (nfeats,),
           **_skip_stack("vae.encoder", d, ff, layers, False), **_skip_stack("vae.decoder", d, ff, layers, True)}
    den = {"denoiser.time_embedding.linear_1.weight": (d, text_dim), "denoiser.time_embedding.linear_1.bias": (d,),
           "denoiser.time_embedding.linear_2.weight": (d, d), "denoiser.time_embedding.linear_2.bias": (d,),
           "denoiser.emb_proj.1.weight": (d, text_dim), "denoiser.emb_proj.1.bias": (d,),
           "denoiser.query_pos.pe": (500, 1, d), "denoiser.mem_pos.pe": (500, 1, d),
           **_skip_stack("denoiser.encoder", d, ff, layers, False)}
    return vae, den


def test_paper_scale_parameter_count_equals_official_configuration():
    """MLD-1 HumanML3D sizes (config_mld_humanml3d.yaml + modules/*.yaml) -> same trainable count."""
    vae, den = official_keys()
    count = lambda keys: sum(torch.Size(s).numel() for s in keys.values())  # noqa: E731
    m = MLD(load_config("method", "mld", "paper", patch={"text_encoder": {"kind": "clip", "dim": 768}}), seed=0)  # the paper's CLIP-L width, not loaded
    card = {k: sum(p.numel() for p in mod.parameters()) for k, mod in m.components().items()}
    assert card["vae"] == count(vae)
    assert card["denoiser"] == count(den)
    assert 25e6 < card["vae"] + card["denoiser"] < 27.5e6  # the paper's "25M-parameter MLD-1" (rounded)


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_official_lightning_checkpoint_loads_strictly(tmp_path):
    vae, den = official_keys()
    g = torch.Generator().manual_seed(0)
    sd = {k: torch.randn(s, generator=g) for k, s in {**vae, **den}.items()}
    sd["text_encoder.text_model.text_projection.weight"] = torch.zeros(4, 4)  # ignored parts of the file
    sd["t2m_textencoder.pos_emb.weight"] = torch.zeros(2, 2)
    path = tmp_path / "official.ckpt"
    torch.save({"epoch": 1, "state_dict": sd, "hyper_parameters": {}}, path)
    assert infer_sizes(convert_official({"state_dict": sd}))["text_encoded_dim"] == 768

    m = MLD(load_config("method", "mld", "paper", patch={"text_encoder": {"kind": "clip", "dim": 768}, "nfeats": 263}), seed=1)
    with pytest.raises(FileNotFoundError, match="stats_dir"):  # the official .ckpt has no Mean/Std
        m.load_checkpoint(path)
    np.save(tmp_path / "Mean.npy", np.zeros(263, np.float32))
    np.save(tmp_path / "Std.npy", np.ones(263, np.float32))
    m = MLD(load_config("method", "mld", "paper", patch={"text_encoder": {"kind": "clip", "dim": 768}, "nfeats": 263, "stats_dir": str(tmp_path)}), seed=1)
    info = m.load_checkpoint(path)
    assert info["format"] == "official"
    mine = {f"{c}.{k}": v for c, mod in m.components().items() for k, v in mod.state_dict().items()}
    assert set(mine) == set(vae) | set(den)
    for k in mine:
        torch.testing.assert_close(mine[k], sd[k], rtol=0, atol=0)


def test_official_checkpoint_with_wrong_text_width_is_refused(tmp_path):
    vae, den = official_keys()
    sd = {k: torch.zeros(s) for k, s in {**vae, **den}.items()}
    path = tmp_path / "official.ckpt"
    torch.save({"state_dict": sd}, path)
    m = MLD(load_config("method", "mld", "paper", patch={"nfeats": 263}), seed=0)  # MiniLM (384-d) denoiser
    with pytest.raises(ValueError, match="clip"):
        m.load_checkpoint(path)


def test_official_checkpoint_with_real_humanml3d_statistics(tmp_path):
    """Official weights + the dataset's Mean/Std (stats_dir, real HumanML3D files) -> raw outputs."""
    import numpy as np

    from tests.conftest import need_shared

    root = need_shared("humanml3d", "HumanML3D")
    motion = np.load(need_shared("humanml3d", "HumanML3D", "new_joint_vecs", "012314.npy"))  # [170, 263]
    vae, den = official_keys()
    g = torch.Generator().manual_seed(0)
    sd = {k: 0.02 * torch.randn(s, generator=g) for k, s in {**vae, **den}.items()}
    torch.save({"state_dict": sd}, tmp_path / "official.ckpt")
    m = MLD(load_config("method", "mld", "paper", patch={"text_encoder": {"kind": "clip", "dim": 768}, "stats_dir": str(root)}), seed=0)
    m.load_checkpoint(tmp_path / "official.ckpt")
    torch.testing.assert_close(m.mean.cpu(), torch.from_numpy(np.load(root / "Mean.npy")).float())
    x = torch.from_numpy(motion)[None]
    rec = m.reconstruct(x)
    assert rec.shape == x.shape and torch.isfinite(rec).all()
    z = torch.randn(1, 1, 256)
    latent = m.sample_latents(torch.randn(1, 1, 768), torch.zeros(1, 1, 768), z, steps=3)
    with torch.inference_mode():  # sampled latents are inference tensors
        out = m._denorm(m.vae.decode(latent, torch.tensor([40])), torch.tensor([40]))
    assert out.shape == (1, 40, 263) and torch.isfinite(out).all()
