"""Loader throughput (samples/s) of the text-to-motion, action and top-down pose pipelines.

The NTU feeder has its own file (``test_loader_skeleton.py``) with the model-step ratio.
Synthetic sets are generated once (cached) and read through the real loaders.
"""

from __future__ import annotations

import pytest

from evaluators.core.config import load_config
from evaluators.datasets import load_dataset

N = 64


def _dataset(name: str):
    return load_dataset(load_config("dataset", name, "smoke"))


@pytest.mark.parametrize("name,split,make", [
    ("synth_t2m", "train", lambda ds, split: ds.torch_dataset(split)),
    ("synth_action", "train", lambda ds, split: ds.torch_dataset(split, num_frames=60)),
    ("synth_coco", "train", lambda ds, split: ds.top_down_dataset(split, train=True)),
])
def test_loader_samples_per_s(benchmark, name, split, make):
    ds = _dataset(name)
    torch_ds = make(ds, split)
    n = min(N, len(torch_ds))

    def run():
        for i in range(n):
            torch_ds[i]

    benchmark.pedantic(run, rounds=3, warmup_rounds=1, iterations=1)
    benchmark.extra_info.update({"what": f"{name} loader ({split})", "batch": n,
                                 "samples_per_s": n / benchmark.stats.stats.median})
