"""HGM3: hierarchical generative masked motion modeling with hard token mining (registered ``hgm3``)."""

from methods.hgm3.method import HGM3

__all__ = ["HGM3"]
