"""DiffusionPose (arXiv 2306.17074): structure-guided heatmap diffusion for 2D pose."""

from methods.diffusionpose.method import DiffusionPose

__all__ = ["DiffusionPose"]
