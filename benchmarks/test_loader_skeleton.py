"""Skeleton loader throughput: the NTU feeder must not be the bottleneck of a training step.

``pytest benchmarks/test_loader_skeleton.py --benchmark-only`` times, on the synth_ntu set
(same code path as real NTU): one batch through the MAMP/MacDiff train feeder (crop, bilinear
resize to 120 frames, rotation, joint noise), against one optimiser step of a small
skeleton transformer (4-frame x 1-joint patches -> 750 tokens, as MacDiff's encoder) on the
same batch. ``extra_info["feeder_over_step"]`` = feeder samples/s / model-step samples/s:
above 1 a single loader process keeps up; below 1 use that many DataLoader workers or more.
Also times raw ``.skeleton`` parsing + preprocessing (files/s).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evaluators.datasets import load_dataset
from evaluators.datasets.skeleton.ntu import read_missing_list, read_skeleton
from evaluators.datasets.skeleton.ntu_preprocess import preprocess_skeleton

BATCH = 32


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.n1, self.n2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):
        B, N, D = x.shape
        q, k, v = self.qkv(self.n1(x)).reshape(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        x = x + self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(B, N, D))
        return x + self.mlp(self.n2(x))


class _SkeletonViT(nn.Module):
    """[B, 3, 120, 25, 2] -> logits; first person only, (4 x 1) patches as in MacDiff's encoder."""

    def __init__(self, dim: int, depth: int, heads: int, classes: int) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, dim, kernel_size=(4, 1), stride=(4, 1))
        self.blocks = nn.ModuleList(_Block(dim, heads) for _ in range(depth))
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        t = self.embed(x[..., 0]).flatten(2).transpose(1, 2)  # [B, 30*25, dim]
        for blk in self.blocks:
            t = blk(t)
        return self.head(t.mean(1))


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    old = os.environ.get("MOTIONREPRO_CACHE")
    os.environ["MOTIONREPRO_CACHE"] = str(tmp_path_factory.mktemp("bench_cache"))
    try:
        ds = load_dataset({"name": "synth_ntu"})
        ds.split("train")
    finally:
        if old is None:
            os.environ.pop("MOTIONREPRO_CACHE")
        else:
            os.environ["MOTIONREPRO_CACHE"] = old
    return ds


def _model_step_seconds(x, y, scale: str, device, classes: int, repeats: int = 3) -> tuple[float, dict]:
    dims = dict(dim=256, depth=8, heads=8) if scale == "paper" else dict(dim=64, depth=2, heads=4)
    model = _SkeletonViT(classes=classes, **dims).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x, y = x.to(device), y.to(device)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    step()
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return best, dims


def test_ntu_feeder_batch_vs_model_step(benchmark, synth, scale, device):
    feeder = synth.feeder("train", train=True, window=120, random_rot=True, noise_std=0.005)
    loader = torch.utils.data.DataLoader(feeder, batch_size=BATCH, shuffle=True, num_workers=0, drop_last=True)
    it = {"i": iter(loader)}

    def one_batch():
        try:
            return next(it["i"])
        except StopIteration:
            it["i"] = iter(loader)
            return next(it["i"])

    x, y, _ = benchmark.pedantic(one_batch, rounds=8, iterations=1, warmup_rounds=1)
    assert x.shape == (BATCH, 3, 120, 25, 2)
    feeder_s = benchmark.stats.stats.median
    step_s, dims = _model_step_seconds(x, y, scale, device, synth.num_classes)
    benchmark.extra_info.update({
        "batch": BATCH, "loader_workers": 0, "model": dims, "device": str(device),
        "feeder_samples_per_s": BATCH / feeder_s, "model_step_samples_per_s": BATCH / step_s,
        "feeder_over_step": (BATCH / feeder_s) / (BATCH / step_s),
    })


def test_skeleton_parse_and_preprocess(benchmark, synth):
    skip = set(read_missing_list(Path(synth.root) / "NTU_RGBD_samples_with_missing_skeletons.txt"))
    files = [p for p in sorted(Path(synth.root).rglob("*.skeleton")) if p.stem not in skip][:20]
    assert len(files) == 20

    def run():
        return [preprocess_skeleton(read_skeleton(p))[1] for p in files]

    frames = benchmark.pedantic(run, rounds=3, iterations=1)
    med = benchmark.stats.stats.median
    benchmark.extra_info.update({"files": len(files), "files_per_s": len(files) / med,
                                 "frames_per_s": sum(frames) / med})
