"""``./reproduce.sh METHOD DATASET --help``: what one paper experiment needs on disk.

Prints the experiment config's header comment, then the files and environment variables the
authors' numbers need (README "Reproducing the paper numbers" has the same list).
"""

from __future__ import annotations

from pathlib import Path

from evaluators.core.config import config_dirs

T2M_EVAL = """  T2M evaluator (text2motion / reconstruction FID), one folder in $T2M_EVALUATOR_ROOT:
    [checkpoints/]t2m/text_mot_match/model/finest.tar      (kit/ for KIT-ML)
    [checkpoints/]t2m/Comp_v6_KLD01/meta/{mean,std}.npy    (or MDM's t2m_mean.npy / t2m_std.npy)
    glove/our_vab_{data.npy,words.pkl,idx.pkl}
    (text-to-motion prepare/download_evaluators.sh + download_glove.sh; MoMask's and MLD's
    deps/t2m + deps/glove layouts work too). Without it an evaluator is retrained here on
    MiniLM word vectors and the numbers are NOT comparable."""

NEEDS = {
    "mld": """  Text encoder: $CLIP_VIT_L14_DIR = a local openai/clip-vit-large-patch14 folder (transformers
    save_pretrained: config.json, model weights, tokenizer files); else MiniLM + a warning.
  Authors' weights: checkpoint=PATH.ckpt (MLD release, e.g. 1222_mld_humanml3d_FID041.ckpt)
    + method_cfg.stats_dir=<HumanML3D folder with Mean.npy/Std.npy> (the .ckpt has no statistics).
  Data: dataset.root=<HumanML3D> or $HUMANML3D_ROOT (new_joint_vecs/, texts/, Mean.npy, Std.npy, test.txt).
""" + T2M_EVAL + """
  Example: CLIP_VIT_L14_DIR=... T2M_EVALUATOR_ROOT=... ./reproduce.sh mld humanml3d \\
             checkpoint=mld_humanml3d.ckpt method_cfg.stats_dir=/data/HumanML3D""",
    "momask": """  Text encoder: $CLIP_VIT_B32_DIR = a local openai/clip-vit-base-patch32 folder (transformers
    save_pretrained); else MiniLM + a warning.
  Authors' weights: checkpoint=DIR = the release tree checkpoints/t2m/ (rvq_nq6_dc512_nc512_noshare_qdp0.2/,
    t2m_nlayer8_nhead6_ld384_ff1024_cdp0.1_rvq6ns/, tres_nlayer8_ld384_ff1024_rvq6ns_cdp0.2_sw/ with
    model/*.tar and the tokenizer's meta/{mean,std}.npy), or method_cfg.stats_dir=<HumanML3D>.
  Data: dataset.root=<HumanML3D> or $HUMANML3D_ROOT.
""" + T2M_EVAL + """
  Example: CLIP_VIT_B32_DIR=... T2M_EVALUATOR_ROOT=... ./reproduce.sh momask humanml3d checkpoint=checkpoints/t2m""",
    "hgm3": """  Text encoder: $CLIP_VIT_B32_DIR = a local openai/clip-vit-base-patch32 folder; else MiniLM + a warning.
  Weights: no official release; trained here (checkpoint=PATH for one of ours).
  Data: dataset.root=<HumanML3D> or $HUMANML3D_ROOT.
""" + T2M_EVAL,
    "macdiff": """  Authors' weights: checkpoint=PATH (MacDiff release .pt/.pth, Wenrui-Shen/MacDiff@692888f layout;
    methods/macdiff/convert.py) - or trained here.
  Data: dataset.root=<NTU RGB+D 60> or $NTU60_ROOT (raw .skeleton files, or the official
    NTU60_XSub.npz / NTU60_XView.npz); layout in configs/dataset/ntu60_xsub.yaml.""",
}


def experiment_help(method: str, name: str) -> str:
    """Help text of experiment ``name`` (``configs/experiment/<name>.yaml``) for ``method``."""
    path = next((d / "experiment" / f"{name}.yaml" for d in config_dirs()
                 if (d / "experiment" / f"{name}.yaml").is_file()), None)
    lines = [f"./reproduce.sh {name.replace('_', ' ', 1)} [overrides]   (configs/experiment/{name}.yaml)"]
    if path is not None:
        for line in Path(path).read_text().splitlines():
            if line.startswith("# @package"):
                continue
            if not line.startswith("#"):
                break
            lines.append("  " + line.lstrip("# ").rstrip())
    synthetic = "synth" in name
    lines.append("")
    if synthetic:
        lines.append("Needs: nothing (bundled synthetic data; pipeline check, not comparable with the paper).")
    else:
        lines.append("Needs, for numbers comparable with the paper:")
        lines.append(NEEDS.get(method, "  the dataset (dataset.root=...); see the method README."))
    lines.append("")
    lines.append("Overrides: scale=smoke|paper seed=N device=cuda checkpoint=PATH method_cfg.K=V protocol_cfg.P.K=V")
    return "\n".join(lines)
