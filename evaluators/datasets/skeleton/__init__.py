"""Skeleton sequences: NTU RGB+D 60/120, PKU-MMD I/II and ``synth_ntu`` (MAMP / MacDiff pipeline)."""
