"""Direction and unit of every metric key the suite reports (one table, STYLE.md §5)."""

from __future__ import annotations

from typing import NamedTuple


class Info(NamedTuple):
    higher_is_better: bool
    unit: str = ""


METRIC_INFO: dict[str, Info] = {
    # skeleton representation learning
    "top1": Info(True, "%"), "top5": Info(True, "%"), "top1_best": Info(True, "%"), "top1_last": Info(True, "%"),
    # text / action to motion
    "fid": Info(False), "fid_train": Info(False), "fid_test": Info(False),
    "r_precision_top1": Info(True), "r_precision_top2": Info(True), "r_precision_top3": Info(True),
    "mm_dist": Info(False), "diversity": Info(True), "multimodality": Info(True), "accuracy": Info(True),
    "aits_s": Info(False, "s"),
    # physical plausibility (evaluators/metrics/physical.py): lower is better, GT is the reference
    "skating_ratio": Info(False), "penetrate_mm": Info(False, "mm"), "float_mm": Info(False, "mm"),
    "jerk": Info(False, "m/s^3"),
    # reconstruction
    "mpjpe_mm": Info(False, "mm"), "pa_mpjpe_mm": Info(False, "mm"), "mpjpe_masked_mm": Info(False, "mm"), "accel_mm": Info(False, "mm/frame^2"),
    "mpjpe": Info(False), "pa_mpjpe": Info(False), "accel": Info(False),
    # 2D pose
    # OKS AP/AR as the papers print them: COCOeval's stats x 100
    "ap": Info(True, "%"), "ap50": Info(True, "%"), "ap75": Info(True, "%"), "apm": Info(True, "%"), "apl": Info(True, "%"),
    "ar": Info(True, "%"), "ar50": Info(True, "%"), "ar75": Info(True, "%"), "arm": Info(True, "%"), "arl": Info(True, "%"),
    "pckh_0.5": Info(True, "%"), "pckh_0.1": Info(True, "%"), "pck_0.2": Info(True, "%"), "pck_0.05": Info(True, "%"),
    # cost
    "wall_s": Info(False, "s"), "infer_s_per_instance": Info(False, "s"), "gmacs": Info(False, "GMAC"), "params_m": Info(False, "M"),
}


def metric_info(key: str) -> Info:
    """Info for ``key``; prefixes like ``pckh_0.5_head`` fall back to their base, unknown keys to higher=True."""
    if key in METRIC_INFO:
        return METRIC_INFO[key]
    for base, info in METRIC_INFO.items():
        if key.startswith(base + "_"):
            return info
    return Info(True, "")
