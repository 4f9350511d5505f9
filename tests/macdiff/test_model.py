"""MacDiff networks: paper-scale size, official checkpoint layout, numerics, masking, fusion, CFG."""

from __future__ import annotations

import math

import pytest
import torch

from evaluators.core.config import load_config
from methods import get_method
from methods.macdiff.model import build_condition, patchify, unpatchify

PAPER = dict(dim_feat=256, depth=8, decoder_depth=5, num_heads=8, mlp_ratio=4, num_frames=120, num_joints=25,
             t_patch_size=4, patch_size=1, dim_t_embed=64)
TINY = dict(dim_feat=32, depth=2, decoder_depth=2, num_heads=4, mlp_ratio=4, num_frames=16, num_joints=25,
            t_patch_size=4, patch_size=1, dim_t_embed=16)


# these tests were written for raw (un-normalised) coordinates: identity statistics, not the YAML's NTU-60 ones
IDENTITY_NORM = {"input_mean": [0.0, 0.0, 0.0], "input_var": [1.0, 1.0, 1.0]}


def macdiff_cfg(patch: dict) -> dict:
    """The paper-scale YAML config with identity statistics and ``patch`` merged in (the code reads
    every key from the YAML)."""
    return load_config("method", "macdiff", "paper", patch={**IDENTITY_NORM, **patch})


def official_shapes(c: dict) -> dict[str, tuple[int, ...]]:
    """Parameter names/shapes of the official ``Transformer`` (model/transformer_macdiff.py,
    Wenrui-Shen/MacDiff@692888f), written from its module definitions."""
    D, H, Dt, k = c["dim_feat"], int(c["dim_feat"] * c["mlp_ratio"]), c["dim_t_embed"], c["t_patch_size"]
    tp, vp = c["num_frames"] // k, c["num_joints"]
    out: dict[str, tuple[int, ...]] = {}

    def lin(name, i, o):
        out[f"{name}.weight"], out[f"{name}.bias"] = (o, i), (o,)

    def ln(name):
        out[f"{name}.weight"], out[f"{name}.bias"] = (D,), (D,)

    def attn_mlp(p):
        lin(f"{p}.attn.qkv", D, 3 * D)
        lin(f"{p}.attn.proj", D, D)
        lin(f"{p}.mlp.fc1", D, H)
        lin(f"{p}.mlp.fc2", H, D)

    out["joints_embed.proj.weight"], out["joints_embed.proj.bias"] = (D, 3, k, 1), (D,)
    for i in range(c["depth"]):
        ln(f"blocks.{i}.norm1")
        ln(f"blocks.{i}.norm2")
        attn_mlp(f"blocks.{i}")
    ln("norm")
    out["temp_embed"], out["pos_embed"] = (1, tp, 1, D), (1, 1, vp, D)
    out["decoder_embed.proj.weight"], out["decoder_embed.proj.bias"] = (D, 3, k, 1), (D,)
    for i in range(c["decoder_depth"]):
        for n in ("norm1", "norm2"):
            lin(f"decoder_blocks.{i}.{n}.fc_z", D, 2 * D)
            lin(f"decoder_blocks.{i}.{n}.fc_t", Dt, 2 * D)
            ln(f"decoder_blocks.{i}.{n}.norm")
        attn_mlp(f"decoder_blocks.{i}")
    ln("decoder_norm")
    out["decoder_temp_embed"], out["decoder_pos_embed"] = (1, tp, 1, D), (1, 1, vp, D)
    lin("decoder_pred", D, k * 3)
    return out


def test_paper_scale_parameter_count_matches_official_configuration():
    m = get_method("macdiff")(macdiff_cfg({"model": PAPER}))
    expected = sum(math.prod(s) for s in official_shapes(PAPER).values())
    card = m.summary()
    assert card["params"]["total"] == expected
    assert m.core.encoder.tp * m.core.encoder.vp == 750  # 4 frames x 1 joint tokens
    assert 11_000_000 < expected < 13_000_000


def _reference_encoder(sd: dict, x: torch.Tensor, c: dict) -> torch.Tensor:
    """Official encoder forward (explicit softmax attention), from the official state dict."""
    import torch.nn.functional as F

    D, h = c["dim_feat"], c["num_heads"]
    n = x.shape[0]
    tok = F.conv2d(x.permute(0, 3, 1, 2), sd["joints_embed.proj.weight"], sd["joints_embed.proj.bias"],
                   stride=(c["t_patch_size"], 1)).permute(0, 2, 3, 1)
    tok = (tok + sd["pos_embed"] + sd["temp_embed"]).reshape(n, -1, D)
    for i in range(c["depth"]):
        p = f"blocks.{i}."
        y = F.layer_norm(tok, (D,), sd[p + "norm1.weight"], sd[p + "norm1.bias"])
        qkv = F.linear(y, sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"]).reshape(n, -1, 3, h, D // h)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        a = ((q @ k.transpose(-2, -1)) * (D // h) ** -0.5).softmax(-1)
        y = (a @ v).transpose(1, 2).reshape(n, -1, D)
        tok = tok + F.linear(y, sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
        y = F.layer_norm(tok, (D,), sd[p + "norm2.weight"], sd[p + "norm2.bias"])
        y = F.linear(F.gelu(F.linear(y, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"])),
                     sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])
        tok = tok + y
    return F.layer_norm(tok, (D,), sd["norm.weight"], sd["norm.bias"])


def test_official_layout_state_dict_loads_strictly_and_gives_official_outputs(tmp_path):
    g = torch.Generator().manual_seed(0)
    sd = {k: torch.randn(s, generator=g) * 0.1 for k, s in official_shapes(TINY).items()}
    # as main_pretrain.py saves it: {"model": state_dict, ...} with a DDP "module." prefix
    torch.save({"model": {f"module.{k}": v for k, v in sd.items()}, "epoch": 399}, tmp_path / "ckpt.pth")
    m = get_method("macdiff")(macdiff_cfg({"model": TINY}))
    m.load_checkpoint(tmp_path / "ckpt.pth")
    torch.testing.assert_close(m.core.decoder.blocks[1].norm2.fc_t.weight, sd["decoder_blocks.1.norm2.fc_t.weight"])
    torch.testing.assert_close(m.core.decoder.pred.bias, sd["decoder_pred.bias"])
    x = torch.randn(3, 16, 25, 3, generator=g)
    with torch.no_grad():
        ours = m.core.encoder.forward_tokens(m.core.encoder.embed(x))
    torch.testing.assert_close(ours, _reference_encoder(sd, x, TINY), atol=1e-5, rtol=1e-4)
    # round trip to the official layout
    from methods.macdiff.convert import to_official

    back = to_official(m.core.encoder.state_dict(), m.core.decoder.state_dict())
    assert set(back) == set(sd)


def test_converter_rejects_foreign_keys_and_accepts_downstream_checkpoints():
    from methods.macdiff.convert import convert_official

    sd = {k: torch.zeros(s) for k, s in official_shapes(TINY).items() if not k.startswith("decoder")}
    sd["head.fc1.weight"] = torch.zeros(8, 4)
    enc, dec, head = convert_official(sd)
    assert not dec and set(head) == {"fc1.weight"}
    m = get_method("macdiff")(macdiff_cfg({"model": TINY}))
    m.load_state_any({"model": sd})  # encoder-only (fine-tuned / linear-probe) checkpoint
    with pytest.raises(ValueError, match="no counterpart"):
        convert_official({**sd, "mask_token": torch.zeros(1)})


def test_patchify_roundtrip_and_official_element_order():
    x = torch.randn(2, 16, 25, 3)
    p = patchify(x, 4)
    assert p.shape == (2, 4 * 25, 12)
    torch.testing.assert_close(unpatchify(p, 4, 25), x)
    # token (tp=1, vp=3) holds frames 4..7 of joint 3, flattened frame-major then xyz
    torch.testing.assert_close(p[0, 1 * 25 + 3], x[0, 4:8, 3, :].reshape(-1))


def test_masking_and_local_global_fusion():
    m = get_method("macdiff")(macdiff_cfg({"model": TINY, "mask_ratio": 0.9}))
    x = torch.randn(2, 16, 25, 3)
    latent, mask, ids_restore = m.core.encoder.forward_masked(x, 0.9)
    L = 4 * 25
    assert latent.shape == (2, round(L * 0.1), 32) and mask.sum(1).tolist() == [L - 10, L - 10]
    z = build_condition(latent, ids_restore, fusion=True)
    vis = mask[0] == 0
    ids_keep = ids_restore[0].argsort()[:10]  # the kept tokens, in shuffled order
    torch.testing.assert_close(z[0, ids_keep], latent[0])
    assert vis[ids_keep].all()
    torch.testing.assert_close(z[0, ~vis], latent[0].mean(0).expand(L - 10, -1))
    zg = build_condition(latent, ids_restore, fusion=False)
    torch.testing.assert_close(zg[0], latent[0].mean(0).expand(L, -1))


def test_cfg_is_one_batched_forward_and_guidance_one_is_conditional():
    m = get_method("macdiff")(macdiff_cfg({"model": TINY, "sampling": {"ddim_steps": 4}}))
    calls = []
    h = m.core.decoder.register_forward_hook(lambda mod, inp, out: calls.append(inp[0].shape[0]))
    x = torch.randn(3, 3, 16, 25, 2)
    out = m.reconstruct(x, steps=4, guidance=3.0)
    h.remove()
    assert out.shape == x.shape and calls == [2 * 3 * 2] * 4  # (B*M rows) x (cond + uncond), ONE call per step
    z = torch.randn(2, 100, 32)
    x_t = torch.randn(2, 16, 25, 3)
    with torch.no_grad():
        e1 = m.core._eps(x_t, 10, z, 1.0)
        e3 = m.core._eps(x_t, 10, z, 3.0)
        eu = m.core._eps(x_t, 10, torch.zeros_like(z), 1.0)
    torch.testing.assert_close(e3, eu + 3.0 * (e1 - eu), atol=1e-5, rtol=1e-4)


def test_encode_poolings_and_absent_person_stays_zero():
    m = get_method("macdiff")(macdiff_cfg({"model": TINY}))
    x = torch.randn(4, 3, 16, 25, 2)
    x[1, ..., 1] = 0
    assert m.encode(x, "joint").shape == (4, 25 * 32) and m.encode(x, "mean").shape == (4, 32)
    with pytest.raises(ValueError, match="pooling"):
        m.encode(x, "cls")
    r = m.reconstruct(x, steps=2)
    assert torch.all(r[1, ..., 1] == 0) and r[1, ..., 0].abs().sum() > 0
    xg, yg = m.augment(x, torch.tensor([0, 1, 2, 3]), 0.5, seed=1)
    assert xg.shape == (2, 3, 16, 25, 2) and len(yg) == 2


def test_save_and_load_our_checkpoint(tmp_path):
    a = get_method("macdiff")(macdiff_cfg({"model": TINY}), seed=0)
    b = get_method("macdiff")(macdiff_cfg({"model": TINY}), seed=1)
    x = torch.randn(2, 3, 16, 25, 2)
    assert not torch.allclose(a.encode(x), b.encode(x))
    a.save_checkpoint(tmp_path / "m.pt")
    b.load_checkpoint(tmp_path / "m.pt")
    torch.testing.assert_close(a.encode(x), b.encode(x))
    torch.testing.assert_close(a.core.decoder.pred.weight, b.core.decoder.pred.weight)
    with pytest.raises(FileNotFoundError):
        b.load_checkpoint(tmp_path / "missing.pt")
    torch.save({"model": {"foo.weight": torch.zeros(1)}}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="neither our checkpoint layout"):
        b.load_checkpoint(tmp_path / "bad.pt")


def test_reconstruct_resamples_other_window_lengths():
    m = get_method("macdiff")(macdiff_cfg({"model": TINY}))
    x = torch.randn(2, 3, 24, 25, 2)
    x[0, ..., 1] = 0
    out = m.reconstruct(x, steps=2)
    assert out.shape == x.shape and torch.all(out[0, ..., 1] == 0)


def test_gmacs_match_closed_form():
    m = get_method("macdiff")(macdiff_cfg({"model": TINY}))
    g = m.gmacs()
    D, L, k, H = 32, 4 * 25, 4, 128
    block = L * (D * 3 * D + D * D + 2 * D * H) + 2 * L * L * D  # linears + QK^T + AV
    embed = L * D * 3 * k
    ln = 5 * L * D  # fvcore's count for an affine LayerNorm (5 per element); 2 per block + final
    assert g["encoder"] * 1e9 == pytest.approx(2 * block + embed + 5 * ln, rel=1e-3)
    fm = 2 * L * (D * 2 * D) + 2 * (16 * 2 * D)  # two AdaLN per block: fc_z per token, fc_t once
    assert g["decoder_step"] * 1e9 == pytest.approx(2 * (block + fm) + embed + L * D * 12 + 5 * ln, rel=1e-3)
