"""The heatmap-regression baseline of DiffusionPose: same HRNet backbone, plain conv head."""

from methods.heatmap_baseline.method import HeatmapBaseline

__all__ = ["HeatmapBaseline"]
