"""MoMask / HGM3 condition on CLIP ViT-B/32 from a local folder when one is given ($CLIP_VIT_B32_DIR).

Reference: ``text_projection(text_model(...).pooler_output)`` of transformers' ``CLIPModel`` (the EOT state projected, what
``clip.encode_text`` returns) on a tiny randomly initialised CLIP saved with ``save_pretrained``.
"""

from __future__ import annotations

import json
import logging

import pytest
import torch

from methods.common.text_encoders import resolve_text_encoder
from methods.hgm3.method import HGM3
from methods.momask.method import MoMask
from tests.hgm3.test_equivalence import TINY
from tests.momask.configs import paper_cfg

CAPS = ["a person walks forward", "someone jumps"]


def tiny_clip_model(folder):
    """A randomly initialised full CLIPModel (text + vision, tiny dims) + tokenizer, saved like openai/clip-*."""
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    chars = "abcdefghijklmnopqrstuvwxyz"
    vocab = {t: i for i, t in enumerate([*chars, *(c + "</w>" for c in chars), "<|startoftext|>", "<|endoftext|>"])}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=32).save_pretrained(folder)
    text = dict(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                num_attention_heads=2, max_position_embeddings=32, bos_token_id=vocab["<|startoftext|>"],
                eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"])
    vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32,
                  patch_size=16)
    torch.manual_seed(0)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=12)).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("cls", [MoMask, HGM3])
def test_clip_b32_folder_from_the_variable_is_used_and_recorded(tmp_path, monkeypatch, cls):
    from transformers import CLIPModel, CLIPTokenizer

    folder = tiny_clip_model(tmp_path / "clip")
    monkeypatch.setenv("CLIP_VIT_B32_DIR", str(folder))
    m = cls(paper_cfg(cls.registry_name, {**TINY, "text_encoder": {"kind": "auto"}}))
    assert m.c["text_encoder"]["kind"] == "clip" and m.c["text_encoder"]["dim"] == 12
    got = m.text.encode(CAPS)
    ref_model, tok = CLIPModel.from_pretrained(folder).eval(), CLIPTokenizer.from_pretrained(folder)
    with torch.no_grad():
        enc = tok(CAPS, padding=True, return_tensors="pt")
        # clip.encode_text: the EOT token's final state through the text projection
        want = ref_model.text_projection(ref_model.text_model(**enc).pooler_output)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    prov = m.provenance()["text_encoder"]
    assert prov["id"] == "clip-vit-b32" and len(prov["config_sha256"]) == 64


def test_without_a_folder_minilm_and_one_warning_line(monkeypatch, caplog):
    import methods.common.text_encoders as T

    monkeypatch.delenv("CLIP_VIT_B32_DIR", raising=False)
    monkeypatch.setattr(T, "_WARNED", set())
    with caplog.at_level(logging.WARNING, logger="methods.common.text_encoders"):
        a = MoMask(paper_cfg("momask", {**TINY, "text_encoder": {"kind": "auto"}}))
        MoMask(paper_cfg("momask", {**TINY, "text_encoder": {"kind": "auto"}}))
    lines = [r.getMessage() for r in caplog.records if "NOT comparable" in r.getMessage()]
    assert len(lines) == 1 and "CLIP_VIT_B32_DIR" in lines[0]
    assert a.c["text_encoder"]["kind"] == "minilm" and a.c["text_encoder"]["dim"] == 384
    assert a.provenance()["text_encoder"]["id"] == "minilm"


def test_a_variable_naming_no_folder_is_refused(tmp_path):
    with pytest.raises(ValueError, match="CLIP_VIT_L14_DIR"):
        resolve_text_encoder({"kind": "auto"}, "clip-vit-l14", "mld", env={"CLIP_VIT_L14_DIR": str(tmp_path / "no")})
