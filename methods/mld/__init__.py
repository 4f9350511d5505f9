"""MLD: motion latent diffusion (Chen et al., CVPR 2023). See README.md."""

from methods.mld.method import MLD

__all__ = ["MLD"]
