"""What scoring a submission from files costs over the evaluation itself (text2motion, synth_t2m).

Two contenders evaluate the SAME motions with the same evaluator, seed and protocol config,
alternated in one process (``benchmarks/alternate.py``: the ratio of their medians survives
machine load, absolute times do not):

- ``in_process``: the text2motion protocol on a generator that hands back motions already in
  memory (no generation cost): the evaluation itself;
- ``score``: what ``./reproduce.sh score`` does for a submission folder of those motions (one
  ``.npz`` per repetition): ``load_submission`` (identity, every item's shape, length and
  finiteness, sha256), then the replay through the same protocol.

``overhead = median(score) / median(in_process) - 1``; the target is < 10 % (``meets_target``,
recorded like every benchmark's numbers, not asserted: a contended machine, ``distorted``, would
make it flaky). The records' JSON
writing (a few kB) is left out of both. The evaluator is untrained at the selected scale (timing
does not depend on weights; ``--paper-scale``: the released T2M evaluator's sizes), built once
and passed to both contenders. Stored in ``extra_info``: both medians, the overhead, the CPU/wall
indicator of the run and its set-up.
"""

from __future__ import annotations

import numpy as np
import torch
import yaml

from benchmarks.alternate import alternate
from evaluators import score as S
from evaluators.core.config import load_config
from evaluators.networks.t2m_train import train_evaluator
from evaluators.protocols.submission import META, ReplayGenerator, load_submission

TARGET_OVERHEAD = 0.10  # ours: scoring from files adds < 10 % to the evaluation itself
PROTO = ["repetitions=2", "mm.num_samples=2", "mm.num_repeats=3", "mm.num_times=2"]  # ours: two repetitions
REPEATS = 3  # ours: alternated rounds after one warm-up call each


class InMemory:
    """A submission held in memory: the replay's items without any file (``ReplayGenerator`` reads
    ``motion(key)`` and ``manifest`` only)."""

    def __init__(self, manifest: dict, motions: dict[str, np.ndarray]) -> None:
        self.manifest, self.motions = manifest, motions

    def motion(self, key: str) -> np.ndarray:
        return self.motions[key]

    def close(self) -> None:
        pass


def _submission(folder, manifest: dict) -> dict[str, np.ndarray]:
    """Random RAW features for every manifest item, written as one ``.npz`` per repetition."""
    rng = np.random.default_rng(0)
    dim = manifest["representation"]["features"]
    motions, reps = {}, {}
    for it in manifest["items"]:
        motions[it["key"]] = rng.normal(size=(it["length"], dim)).astype(np.float32)
        reps.setdefault(it["repetition"], {})[it["key"]] = motions[it["key"]]
    for r, arrays in reps.items():
        np.savez(folder / f"r{r:02d}.npz", **arrays)
    meta = {"model": "benchmark", "representation": "features", "manifest": manifest["identity"]}
    (folder / META).write_text(yaml.safe_dump(meta), encoding="utf-8")
    return motions


def test_score_overhead(benchmark, scale, tmp_path):
    torch.set_num_threads(1)
    s = S.setup("text2motion", "synth_t2m", "smoke", PROTO)
    tcfg = dict(load_config("protocol", "text2motion", scale)["evaluator"]["train"])
    tcfg.update(steps=0, movement_pretrain_steps=0)
    ev = train_evaluator(s.data, cache=False, **tcfg).eval()
    extra = {"t2m_evaluator": ev}
    manifest = S.manifest_for(s, 0, ev)
    motions = _submission(tmp_path, manifest)

    def in_process():
        return S.run_protocol(s, ReplayGenerator(InMemory(manifest, motions)), 0, extra=extra)

    def score():
        return S.score_submission(s, load_submission(tmp_path, manifest), 0, extra=extra)

    a = [r.metrics for r in in_process()]
    assert a == [r.metrics for r in score()]  # the same evaluation, so the ratio compares like with like
    run = benchmark.pedantic(lambda: alternate({"in_process": in_process, "score": score}, repeats=REPEATS),
                             rounds=1, warmup_rounds=0, iterations=1)
    overhead = run.ratio("score", "in_process") - 1.0
    benchmark.extra_info.update({
        "in_process_median_s": run.median("in_process"), "score_median_s": run.median("score"),
        "overhead": overhead, "target_overhead": TARGET_OVERHEAD, "cpu_over_wall": run.cpu_over_wall,
        "meets_target": overhead < TARGET_OVERHEAD, "distorted": run.distorted, "evaluator_scale": scale, "items": manifest["n_items"],
        "setup": "synth_t2m smoke split, " + ", ".join(PROTO) + ", untrained evaluator"})
    print(f"score overhead {100 * overhead:.1f}% (in-process {run.median('in_process'):.2f}s, "
          f"score {run.median('score'):.2f}s, evaluator {scale}, cpu/wall {run.cpu_over_wall:.2f})")
