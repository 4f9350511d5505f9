"""MoMask: residual VQ tokenizer + masked / residual transformers (registered as ``momask``)."""

from methods.momask.method import MoMask

__all__ = ["MoMask"]
