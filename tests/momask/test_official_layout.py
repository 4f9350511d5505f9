"""Official MoMask state-dict layouts load strictly and paper sizes match.

The "reference" here is OUR restatement of the authors' modules (``restated_momask_layout.py``),
so the forward comparisons check key names/shapes and our layers against stock torch layers; they
are not evidence of parity with the authors' code (see that module's docstring).
"""

from __future__ import annotations

import math

import pytest
import torch

from methods.momask import convert
from methods.momask.method import MoMask
from methods.momask.tokenizer import RVQVAE
from methods.momask.transformer import MaskTransformer, ResidualTransformer
from tests.momask.configs import paper_cfg
from tests.momask.restated_momask_layout import (
    RestatedMaskTransformer,
    RestatedResidualTransformer,
    restated_rvq_shapes,
)

PAPER_CLIP = {"text_encoder": {"kind": "clip", "clip_path": None, "dim": 512}}


def _n(m):
    return sum(p.numel() for p in m.parameters())


def test_paper_param_counts_match_our_restatement_and_closed_form():
    m = MoMask(paper_cfg("momask", PAPER_CLIP))
    rvq = sum(math.prod(s) for k, s in restated_rvq_shapes().items() if not k.endswith("codebook"))
    assert _n(m.vq) == rvq  # codebooks are buffers (EMA), not parameters, in both
    assert _n(m.mtrans) == _n(RestatedMaskTransformer())
    assert _n(m.rtrans) == _n(RestatedResidualTransformer())
    # closed form of the masked transformer (8 post-norm layers at width 384, FF 1024)
    layer = 4 * 384 * 384 + 4 * 384 + 2 * 384 * 1024 + 1024 + 384 + 4 * 384
    assert _n(m.mtrans) == 514 * 512 + (512 * 384 + 384) * 2 + 8 * layer + (384 * 384 + 384) + 768 + (384 * 512 + 512)
    assert m.vq.quantizer.num_quantizers == 6 and m.vq.nb_code == 512 and m.vq.code_dim == 512
    assert len(m.mtrans.seqTransEncoder.layers) == 8 and m.mtrans.seqTransEncoder.layers[0].self_attn.heads == 6


def test_official_tokenizer_layout_loads_strictly_and_encodes_by_nearest_codes():
    torch.manual_seed(0)
    kw = dict(d_in=263, nb_code=16, code_dim=8, down_t=2, width=12, depth=2, nq=3)
    sd = {k: torch.randn(s) * 0.1 for k, s in restated_rvq_shapes(**kw).items()}
    vq = RVQVAE(263, 16, 8, 2, 12, 2, 3, 3)
    vq.load_state_dict(convert.convert_tokenizer(sd), strict=True)
    vq.eval()
    x = torch.randn(2, 16, 263)
    ids = vq.encode(x)
    assert ids.shape == (2, 4, 3)
    # independent residual nearest-neighbour encoding of the encoder output
    z = vq.encoder.model(x.permute(0, 2, 1)).permute(0, 2, 1)  # [B, N, C]
    res, zq = z, torch.zeros_like(z)
    for q in range(3):
        cb = sd[f"quantizer.layers.{q}.codebook"]
        idx = torch.cdist(res, cb[None].expand(2, -1, -1)).argmin(-1)
        assert torch.equal(idx, ids[..., q])
        res, zq = res - cb[idx], zq + cb[idx]
    out = vq.decode(ids)
    ref = vq.decoder.model(zq.permute(0, 2, 1)).permute(0, 2, 1)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(vq.decode(ids), out)  # deterministic
    with pytest.raises(RuntimeError):  # strict: a missing official key is an error
        RVQVAE(263, 16, 8, 2, 12, 2, 3, 3).load_state_dict(
            convert.convert_tokenizer({k: v for k, v in sd.items() if "decoder.model.0" not in k}))


def test_official_mask_transformer_keys_load_and_forward_equals_our_stock_layer_restatement():
    torch.manual_seed(0)
    ref = RestatedMaskTransformer(num_tokens=32, code_dim=16, latent=24, ff=40, layers=2, heads=3, clip_dim=10).eval()
    sd = {**ref.state_dict(), "clip_model.token_embedding.weight": torch.zeros(3, 3)}  # official files carry CLIP
    ours = MaskTransformer(32, 16, 24, 40, 2, 3, 0.2, 10)
    ours.load_state_dict(convert.convert_transformer(sd), strict=True)
    ours.eval()
    ids = torch.randint(0, 34, (3, 7))
    pad = torch.tensor([[False] * 7, [False] * 5 + [True] * 2, [False] * 3 + [True] * 4])
    cond = torch.randn(3, 10)
    with torch.no_grad():
        a = ref.trans_forward(ids, cond, pad)
        b = ours(ids, cond[:, None], pad)
    torch.testing.assert_close(b[~pad], a[~pad], atol=1e-5, rtol=1e-4)
    # CFG is one batched forward: uncond rows are the zero condition
    with torch.no_grad():
        g = ours.cfg_logits(ids, cond[:, None], pad, scale=4.0)
        u = ref.trans_forward(ids, torch.zeros_like(cond), pad)
    torch.testing.assert_close(g[~pad], (u + (a - u) * 4.0)[~pad], atol=1e-4, rtol=1e-4)


def test_official_residual_transformer_keys_load_and_forward_equals_our_stock_layer_restatement():
    torch.manual_seed(0)
    ref = RestatedResidualTransformer(num_tokens=32, nq=4, code_dim=16, latent=24, ff=40, layers=2, heads=3,
                                      clip_dim=10).eval()
    ours = ResidualTransformer(32, 4, 16, 24, 40, 2, 3, 0.2, 10, 0.2, share_weight=True)
    ours.load_state_dict(convert.convert_transformer(ref.state_dict()), strict=True)
    ours.eval()
    hist, cond = torch.randn(2, 6, 16), torch.randn(2, 10)
    pad = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    qids = torch.tensor([1, 3])
    with torch.no_grad():
        torch.testing.assert_close(ours(hist, qids, cond, pad)[~pad], ref.trans_forward(hist, qids, cond, pad)[~pad],
                                   atol=1e-5, rtol=1e-4)


def test_official_release_folder_is_found_and_loaded(tmp_path):
    """A folder in the release layout (three runs, *.tar with the official keys) loads into the method."""
    small = {"d_in": 263, "text_encoder": {"kind": "minilm", "dim": 10},
             "tokenizer": {"nb_code": 16, "code_dim": 8, "width": 12, "depth": 2, "num_quantizers": 3},
             "mask_transformer": {"latent_dim": 24, "ff_size": 40, "num_layers": 2, "num_heads": 3},
             "residual_transformer": {"latent_dim": 24, "ff_size": 40, "num_layers": 2, "num_heads": 3}}
    src = MoMask(paper_cfg("momask", small))
    root = tmp_path / "checkpoints" / "t2m"
    files = {"rvq_nq3/model/net_best_fid.tar": {"vq_model": {k: v for k, v in src.vq.state_dict().items()
                                                             if k.endswith(("weight", "bias", "codebook"))}, "ep": 1},
             "t2m_trans/model/latest.tar": {"t2m_transformer": src.mtrans.state_dict(), "ep": 3},
             "tres/model/net_best_fid.tar": {"res_transformer": src.rtrans.state_dict(), "ep": 2}}
    for rel, obj in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        torch.save(obj, root / rel)
    (root / "rvq_nq3" / "meta").mkdir()
    import numpy as np

    np.save(root / "rvq_nq3" / "meta" / "mean.npy", np.full(263, 2.0, np.float32))
    np.save(root / "rvq_nq3" / "meta" / "std.npy", np.full(263, 3.0, np.float32))
    dst = MoMask(paper_cfg("momask", small))
    dst.load_checkpoint(root)
    for k, v in src.mtrans.state_dict().items():
        assert torch.equal(dst.mtrans.state_dict()[k], v), k
    assert torch.equal(dst.vq.quantizer.layers[1].codebook, src.vq.quantizer.layers[1].codebook)
    assert float(dst.mean[0]) == 2.0 and float(dst.std[0]) == 3.0
    x = torch.randn(1, 16, 263)
    torch.testing.assert_close(dst.reconstruct(x), dst.reconstruct(x))  # same weights, same output
