"""The optional side-by-side benchmark against the authors' MacDiff: when it skips, what it builds, what it writes.

No official code is needed here: ``official_root`` must name the reason it skips (variable unset,
or a folder that is not a MacDiff checkout); the official model must be built with the values
of the authors' ``config/ntu60_xsub_joint/pretrain_madiff.yaml`` (Wenrui-Shen/MacDiff@692888f,
transcribed below); ``write_record`` must write the keys the speed page reads, with the ratio as
official median over suite median and the distortion flag of :class:`benchmarks.alternate.Alternation`.
"""

from __future__ import annotations

import json

from benchmarks import official_macdiff as O
from benchmarks import test_side_by_side_macdiff as S
from benchmarks.alternate import Alternation, machine_folder
from evaluators.core.config import load_config
from evaluators.records import hardware_info
from leaderboards.speed_summary import SIDE_BY_SIDE_KEYS

# model_args of the authors' pretrain_madiff.yaml (NTU-60 xsub), as written there
PRETRAIN_MADIFF = {"dim_in": 3, "dim_feat": 256, "dim_t_embed": 64, "depth": 8, "decoder_depth": 5, "num_heads": 8,
                   "mlp_ratio": 4, "num_frames": 120, "num_joints": 25, "patch_size": 1, "t_patch_size": 4,
                   "qkv_bias": True, "drop_rate": 0.0, "attn_drop_rate": 0.0, "drop_path_rate": 0.0,
                   "diff_prediction": "noise", "diff_steps": 1000, "diff_noise_schedule": ["inverse_cosine", 1],
                   "lambda_loss_uni": 0.02, "layer_mask_ratio": 0.0, "uncond_ratio": 0.1,
                   "input_mean": [-0.0058, -0.1333, -0.0246], "input_var": [0.0206, 0.0805, 0.0218]}


def test_skips_with_the_reason(monkeypatch, tmp_path):
    monkeypatch.delenv(O.ENV, raising=False)
    root, why = O.official_root()
    assert root is None and O.ENV in why
    monkeypatch.setenv(O.ENV, str(tmp_path))
    root, why = O.official_root()
    assert root is None and "model/transformer_macdiff.py" in why
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "transformer_macdiff.py").write_text("")
    assert O.official_root() == (tmp_path, "")


def test_official_model_gets_the_authors_pretraining_config():
    kw = O.official_kwargs(load_config("method", "macdiff", "paper"))
    assert {k: v for k, v in kw.items() if k in PRETRAIN_MADIFF} == PRETRAIN_MADIFF


def test_record_keys_ratio_and_distortion(monkeypatch, tmp_path):
    monkeypatch.setattr(S, "OUT", tmp_path)
    alt = Alternation(times={"official": [30.0, 26.0, 25.0], "suite": [17.0, 20.0, 13.0]},
                      first_call_s={"official": 31.0, "suite": 18.0}, cpu_over_wall=0.6, threads=1)
    rec = S.write_record("macdiff_train_b32", 32, 1.2, alt, equivalence={"max_rel_grad_gap": 1e-6})
    assert set(SIDE_BY_SIDE_KEYS) <= set(rec)
    (written,) = tmp_path.glob("*/macdiff_train_b32.json")  # in the folder of this machine's CPU model
    assert written.parent.name == machine_folder(hardware_info()["cpu"])
    assert json.loads(written.read_text()) == rec
    assert (rec["official_s"], rec["suite_s"], rec["ratio"]) == (26.0, 17.0, 26.0 / 17.0)  # medians
    assert rec["method"] == "macdiff" and rec["distorted"] is True  # 0.6 of a core for a 1-thread run
    assert rec["first_call_s"] == {"official": 31.0, "suite": 18.0}
    assert rec["equivalence"] == {"max_rel_grad_gap": 1e-6}
