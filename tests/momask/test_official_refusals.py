"""Authors' weights with a mismatched setup are refused in one line naming the fix; --help names the files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from methods.momask.method import MoMask
from tests.momask.configs import paper_cfg

SMALL = {"d_in": 263, "tokenizer": {"nb_code": 16, "code_dim": 8, "width": 12, "depth": 2, "num_quantizers": 3},
         "mask_transformer": {"latent_dim": 24, "ff_size": 40, "num_layers": 2, "num_heads": 3},
         "residual_transformer": {"latent_dim": 24, "ff_size": 40, "num_layers": 2, "num_heads": 3}}


def _release_tree(root, text_dim, meta=True):
    """The release layout (checkpoints/t2m/<run>/model/*.tar, official keys) from a MoMask with ``text_dim``."""
    src = MoMask(paper_cfg("momask", {**SMALL, "text_encoder": {"kind": "clip", "clip_path": None, "dim": text_dim}}))
    files = {"rvq_nq3/model/net_best_fid.tar": {"vq_model": {k: v for k, v in src.vq.state_dict().items()
                                                             if k.endswith(("weight", "bias", "codebook"))}},
             "t2m_trans/model/latest.tar": {"t2m_transformer": src.mtrans.state_dict()},
             "tres/model/net_best_fid.tar": {"res_transformer": src.rtrans.state_dict()}}
    for rel, obj in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        torch.save(obj, root / rel)
    if meta:
        (root / "rvq_nq3" / "meta").mkdir()
        np.save(root / "rvq_nq3" / "meta" / "mean.npy", np.zeros(263, np.float32))
        np.save(root / "rvq_nq3" / "meta" / "std.npy", np.ones(263, np.float32))
    return root


def test_clip_width_checkpoint_against_minilm_config_is_refused_in_one_line(tmp_path):
    root = _release_tree(tmp_path / "t2m", text_dim=12)  # stands for the released 512-d CLIP projection
    dst = MoMask(paper_cfg("momask", {**SMALL, "text_encoder": {"kind": "minilm", "dim": 10}}))
    with pytest.raises(ValueError) as e:
        dst.load_checkpoint(root)
    msg = str(e.value)
    assert "\n" not in msg and "CLIP_VIT_B32_DIR" in msg and "(12, 24)" in msg.replace("(24, 12)", "(12, 24)")


def test_release_without_mean_std_is_refused_naming_stats_dir(tmp_path):
    root = _release_tree(tmp_path / "t2m", text_dim=10, meta=False)
    dst = MoMask(paper_cfg("momask", {**SMALL, "text_encoder": {"kind": "minilm", "dim": 10}}))
    with pytest.raises(FileNotFoundError, match="stats_dir"):  # before: a warning, then mean 0 / std 1
        dst.load_checkpoint(root)


@pytest.mark.parametrize("method,dataset,needles", [
    ("mld", "humanml3d", ["CLIP_VIT_L14_DIR", "T2M_EVALUATOR_ROOT", "finest.tar", "our_vab", "stats_dir", ".ckpt"]),
    ("momask", "humanml3d", ["CLIP_VIT_B32_DIR", "T2M_EVALUATOR_ROOT", "model/*.tar", "meta/{mean,std}.npy"]),
    ("macdiff", "ntu60", ["checkpoint=PATH", "NTU60_ROOT"]),
])
def test_experiment_help_names_files_and_variables(capsys, method, dataset, needles):
    from evaluators.runner.run import main

    main(["--experiment", method, dataset, "--help"])
    out = capsys.readouterr().out
    for n in needles:
        assert n in out, (n, out)
