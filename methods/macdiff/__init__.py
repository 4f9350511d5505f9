"""MacDiff (Wu et al., ECCV 2024): masked conditional diffusion for skeleton representation learning."""

from methods.macdiff.method import MacDiff
from methods.macdiff.schedule import inverse_cosine_betas

__all__ = ["MacDiff", "inverse_cosine_betas"]
