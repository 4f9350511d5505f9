"""Official MoMask checkpoints load as the authors' scripts load them.

The file chosen per role is the authors' choice in ``gen_t2m.py`` / ``eval_t2m_trans_res.py``
(tokenizer and residual transformer ``net_best_fid.tar``, masked transformer ``latest.tar``);
the test folders hold BOTH files for every run, with different weights, so picking the wrong
one is visible.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from methods.momask import convert
from methods.momask.method import MoMask
from tests.momask.configs import paper_cfg

SMALL = {"d_in": 263, "text_encoder": {"kind": "minilm", "dim": 384},
         "tokenizer": {"nb_code": 16, "code_dim": 8, "width": 12, "depth": 2, "num_quantizers": 3},
         "mask_transformer": {"latent_dim": 24, "ff_size": 40, "num_layers": 2, "num_heads": 3},
         "residual_transformer": {"latent_dim": 24, "ff_size": 40, "num_layers": 2, "num_heads": 3}}


def _vq_sd(m):
    return {k: v for k, v in m.vq.state_dict().items() if k.endswith(("weight", "bias", "codebook"))}


def _release(root, a: MoMask, b: MoMask):
    """Every run holds latest.tar (weights of ``a``) and net_best_fid.tar (weights of ``b``)."""
    for run, key, sd in (("rvq", "vq_model", _vq_sd), ("trans", "t2m_transformer", lambda m: m.mtrans.state_dict()),
                         ("res", "res_transformer", lambda m: m.rtrans.state_dict())):
        d = root / run / "model"
        d.mkdir(parents=True)
        torch.save({key: sd(a), "ep": 9}, d / "latest.tar")
        torch.save({key: sd(b), "ep": 5}, d / "net_best_fid.tar")
    meta = root / "rvq" / "meta"  # the releases ship the dataset statistics beside the tokenizer
    meta.mkdir()
    n = int(getattr(a, "nfeats", 263))
    np.save(meta / "mean.npy", np.zeros(n, np.float32))
    np.save(meta / "std.npy", np.ones(n, np.float32))


def _same(m1, m2) -> bool:
    s1, s2 = m1.state_dict(), m2.state_dict()
    return all(torch.equal(s1[k], s2[k]) for k in s2 if k in s1)


@pytest.fixture(scope="module")
def pair():
    a = MoMask(paper_cfg("momask", SMALL), seed=1)  # neither is the loader's own seed-0 start
    b = MoMask(paper_cfg("momask", SMALL), seed=2)
    return a, b


def test_each_role_loads_the_file_the_official_scripts_load(tmp_path, pair):
    a, b = pair
    _release(tmp_path, a, b)
    m = MoMask(paper_cfg("momask", SMALL))
    m.load_checkpoint(tmp_path)
    assert _same(m.mtrans, a.mtrans) and not _same(m.mtrans, b.mtrans)  # latest.tar
    assert _same(m.rtrans, b.rtrans) and not _same(m.rtrans, a.rtrans)  # net_best_fid.tar
    assert torch.equal(m.vq.quantizer.layers[0].codebook, b.vq.quantizer.layers[0].codebook)
    assert {r: f.split("/")[-1] for r, f in m.official_files_loaded.items()} == convert.OFFICIAL_FILES
    prov = m.provenance()["weights"]
    assert prov["id"] == "official-converted"
    assert prov["files"]["mask_transformer"]["file"].endswith("trans/model/latest.tar")
    import hashlib

    f = prov["files"]["tokenizer"]["file"]
    assert prov["files"]["tokenizer"]["sha256"] == hashlib.sha256(open(f, "rb").read()).hexdigest()


def test_override_per_role_and_missing_file_names_the_override(tmp_path, pair):
    a, b = pair
    _release(tmp_path, a, b)
    m = MoMask(paper_cfg("momask", {**SMALL, "official_files": {"mask_transformer": "net_best_fid.tar", "tokenizer": "latest.tar"}}))
    m.load_checkpoint(tmp_path)
    assert _same(m.mtrans, b.mtrans) and _same(m.rtrans, b.rtrans)
    assert torch.equal(m.vq.quantizer.layers[0].codebook, a.vq.quantizer.layers[0].codebook)
    (tmp_path / "trans" / "model" / "latest.tar").unlink()
    with pytest.raises(FileNotFoundError, match=r"latest\.tar.*official_files\.mask_transformer"):
        MoMask(paper_cfg("momask", SMALL)).load_checkpoint(tmp_path)


def test_training_from_an_official_tokenizer_is_refused(tmp_path, pair):
    a, b = pair
    _release(tmp_path, a, b)
    m = MoMask(paper_cfg("momask", SMALL))
    m.load_checkpoint(tmp_path)
    with pytest.raises(RuntimeError, match="re-initialises every codebook"):
        m.fit(object())  # refused before the dataset is touched
    ours = tmp_path / "ours.pt"
    m.save_checkpoint(ours)
    m2 = MoMask(paper_cfg("momask", SMALL))
    m2.load_checkpoint(ours)  # our own checkpoint: training may resume
    convert.refuse_official_tokenizer_training(m2)
    assert "weights" not in m2.provenance()  # trained-here default (the runner fills it)


def test_force_mask_decodes_layer0_without_the_condition(pair):
    """Official ``generate(force_mask=True)``: layer-0 logits are the unconditional ones, so with the
    same seed two different captions give the same layer-0 tokens (and they differ without it).
    Untrained weights barely see the condition (a few layer-0 draws among the top-k would have to
    flip by chance), so the condition embedding and the output head are scaled up first."""
    import copy

    m = copy.deepcopy(pair[0])
    with torch.no_grad():
        m.mtrans.cond_emb.weight.mul_(50.0)
        m.mtrans.output_process.poseFinal.weight.mul_(5.0)
    lens = [32, 24, 32]

    def layer0(caps, force):
        torch.manual_seed(3)
        m.generate(caps, lens, steps=4, force_mask=force)
        return m.last_generation_codes()[..., 0]

    c1, c2 = ["a man walks forward"] * 3, ["someone jumps up and down twice"] * 3
    assert torch.equal(layer0(c1, True), layer0(c2, True))
    assert not torch.equal(layer0(c1, False), layer0(c2, False))
    ids = m.last_generation_codes()
    assert ids.shape == (3, 8, 3) and (ids[1, 6:] == -1).all()
