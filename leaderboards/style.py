"""One colour per method, used by every plot, the training curves and the site.

A method keeps its colour across figures so a reader can follow it from the quality plot to the
latency plot to its gallery column. The known methods get fixed entries of matplotlib's
colour-blind-safe ``tab10`` cycle; a method registered later (a plugin) gets a colour from the rest
of the cycle chosen by a stable hash of its name (``zlib.crc32``, not Python's salted ``hash``), so
it too is the same in every figure and every run.
"""

from __future__ import annotations

import zlib

# tab10 (matplotlib's default cycle), in its own order
TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
         "#17becf")

# ours: which method gets which tab10 entry (any fixed assignment works; these keep the two pose
# methods and the two masked-transformer generators apart)
METHOD_COLORS = {
    "mld": TAB10[0],
    "momask": TAB10[1],
    "hgm3": TAB10[2],
    "macdiff": TAB10[3],
    "diffusionpose": TAB10[4],
    "heatmap_baseline": TAB10[5],
}
GROUND_TRUTH_COLOR = "#333333"
_SPARE = tuple(c for c in TAB10 if c not in METHOD_COLORS.values())


def color_of(method: str) -> str:
    """The hex colour of ``method`` (``"ground truth"`` / ``"gt"``: dark grey)."""
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    if method.lower() in ("gt", "ground truth", "ground_truth"):
        return GROUND_TRUTH_COLOR
    return _SPARE[zlib.crc32(method.encode("utf-8")) % len(_SPARE)]


def lower_is_better(metric: str, higher_is_better: bool | None = None) -> bool:
    """Direction of a metric: the record's ``higher_is_better`` when given, else by name."""
    if higher_is_better is not None:
        return not higher_is_better
    m = metric.lower()
    return any(k in m for k in ("fid", "mpjpe", "dist", "err", "loss", "aits", "latency", "jerk", "skating"))
