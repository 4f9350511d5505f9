"""Run under ``torchrun --nproc_per_node=2``: the pose protocol with the test oracle on synth-coco.

Rank 0 saves the results so the test can compare them with one process.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from evaluators.core import distributed as D  # noqa: E402
from evaluators.datasets import load_dataset  # noqa: E402
from evaluators.protocols import RunContext, get_protocol  # noqa: E402
from tests.pose.oracle import Oracle  # noqa: E402

SYNTH = {"name": "synth_coco", "seed": 5, "n_train": 2, "n_val": 7, "image_size": [128, 128]}


def evaluate(workdir: Path) -> list[dict]:
    data = load_dataset(SYNTH)
    oracle = Oracle(data.instances("val"), data.skeleton, noise_per_step=6.0)
    ctx = RunContext(workdir=workdir, rank=D.rank(), world_size=D.world_size())
    res = get_protocol("coco_ap").fn(oracle, data, {"steps_sweep": [1, 3], "overlays": 0, "batch_size": 2}, ctx)
    return [{"variant": r.variant, "metrics": r.metrics, "n_samples": r.n_samples} for r in res]


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    D.init_distributed()
    out = evaluate(Path(args.out).parent)
    if D.is_main():
        Path(args.out).write_text(json.dumps({"world_size": D.world_size(), "results": out}))
    D.shutdown_distributed()
