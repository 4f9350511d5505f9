"""The text-to-motion protocol (Guo et al. 2022, as MLD / MoMask / HGM3 report it).

Source: T2M ``final_evaluations.py``, ``motion_loaders/``, ``utils/metrics.py``; MLD
``test.py`` / ``configs/base.yaml``; MoMask ``utils/eval_t2m.py``. Per repetition r (seed
``ctx.seed + r``):

1. one loader pass over the test split: shuffled, batches of 32, ``drop_last``; per motion one
   random caption and the official crop (multiple of 4, one unit less with p=1/3, random start);
2. real row: R-Precision top-1..3 and MM-Dist of (caption, GT motion) pairs, FID between the GT
   embeddings of this pass and of a second independent GT pass (the official "ground truth"
   loader is a second iteration of the GT loader), Diversity of the GT embeddings;
3. generated row: ``method.generate(captions, GT lengths, steps)`` (RAW features, embedded
   through the evaluator with the evaluator's mean/std), R-Precision, MM-Dist, FID against the
   GT embeddings of the same pass (computed once per repetition, cached, shared with the real
   row and every ``steps_sweep`` variant), Diversity (300 pairs), MultiModality (100 prompts x 30
   generations x 10 pairs; ``mm.mode: momask`` = first 3 batches x 30);
4. every metric reported as mean and 1.96 std / sqrt(R) over the R repetitions.

Cost (``# ours:``): with ``cache_gt_windows`` (default) a GT crop window (motion,
start, length) already embedded in an earlier repetition, or by the other GT pass, is not
embedded again. The official evaluations re-embed every GT crop in every repetition (T2M
``final_evaluations.py:155-172``, MoMask ``utils/eval_t2m.py:976``); a crop's embedding does not
depend on the rest of its batch, so the values agree up to fp32 rounding (~1e-6). A motion of
at most ``max_motion_length`` frames has at most 12 windows (<= 4 starts at the rounded length,
<= 8 at one unit less), against 2 x R crops (GT pass and second GT pass) per run.

AITS: mean wall time of ``generate`` at batch 1 over test captions (synchronised on GPU).
``steps_sweep: [10, 50, ...]`` adds one result per step count (variant ``steps=N``: FID,
R-Precision, MM-Dist, Diversity and AITS; no MultiModality). Under ``torchrun`` the batches
are sharded across ranks (``evaluators.core.distributed.shard_indices``) and gathered; the
record stores the expected and the evaluated sample counts.

Timing: each repetition's wall time is split into exclusive spans (``_timing.py``):
``generation`` (``method.generate``), ``evaluator_gt`` / ``evaluator_motion`` /
``evaluator_text`` (the T2M networks on GT crops / on generations / on captions), ``metric_*``, ``data`` (the loader pass: draws, crops, padding) and ``repetition``
(the rest of the loop body). The split is logged per repetition; a caller that puts a
``_timing.Spans`` in ``ctx.extra["timing"]`` reads it (``benchmarks/test_text2motion_repetition.py``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from evaluators.metrics import generation as G
from evaluators.networks.t2m_data import t2m_split
from evaluators.protocols import _t2m_helpers as H
from evaluators.protocols import _timing as T
from evaluators.protocols._physical_rows import SKELETON_OF_DIM, PhysicalRow, gt_physical
from evaluators.protocols.registry import ProtocolResult, RunContext, complete_config, register_protocol

log = logging.getLogger(__name__)





def _diversity_pairs(n: int, wanted: int) -> int:
    # MoMask utils/eval_t2m.py: 100 pairs when there are 300 samples or fewer
    if n > wanted:
        return wanted
    return 100 if n > 100 else n - 1


def _retrieval(text, motion, k) -> dict[str, float]:
    with T.span("metric_retrieval"):
        rp = G.r_precision(text, motion, top_k=k)
        out = {f"r_precision_top{i + 1}": float(rp[i]) for i in range(k)}
        out["mm_dist"] = G.matching_score(text, motion)
    return out


def _fid(a, b) -> float:
    with T.span("metric_fid"):
        return G.fid(a, b)


def _diversity(feats, wanted: int, seed: int) -> float:
    with T.span("metric_diversity"):
        return G.diversity(feats, _diversity_pairs(len(feats), wanted), seed=seed)


def _summarise(per_rep: list[dict[str, float]]) -> dict[str, dict]:
    keys = per_rep[0].keys()
    out = {}
    for k in keys:
        mean, ci = G.confidence_interval([r[k] for r in per_rep])
        out[k] = {"value": mean, "ci95": ci}
    return out


@register_protocol("text2motion", needs="MotionGenerator", tasks="text2motion")
@T.recorded  # timing spans per repetition (generation / evaluator / metrics / data)
def text2motion(method, data, cfg: dict, ctx: RunContext) -> list[ProtocolResult]:
    """T2M protocol: R-Precision, FID, MM-Dist, Diversity, MultiModality (mean ± 95% CI over R), AITS."""
    c = complete_config("text2motion", cfg)
    split = t2m_split(data, c["split"])
    ev = H.build_evaluator(data, c["evaluator"], ctx)
    bs, reps, k = int(c["batch_size"]), int(c["repetitions"]), int(c["top_k"])
    unit, max_len = ev.cfg.unit_length, ev.cfg.max_motion_length
    if split.dim != ev.cfg.dim_pose:
        raise ValueError(f"dataset features are {split.dim}-d, evaluator expects {ev.cfg.dim_pose}-d")
    default_steps = c["steps"]
    # skating, penetration/floating, jerk (evaluators/metrics/physical.py): defined for the HumanML3D and
    # KIT-ML skeletons only, so a feature width of neither leaves them out
    physical = bool(c["physical"]["enabled"]) and split.dim in SKELETON_OF_DIM
    sweep = [int(s) for s in (c["steps_sweep"] or [])]
    step_list = [default_steps] + [s for s in sweep if s != default_steps]

    real_rows: list[dict] = []
    gen_rows: dict[Any, list[dict]] = {s: [] for s in step_list}
    evaluated = 0
    codes = H.CodeDiversity(str(c["debug_checks"]["residual_codes"]))
    # caches live for THIS call only: a run's numbers must not depend on what ran before it in the
    # process (a cached crop embedded in another batch differs in the last bits, so a resumed run would drift)
    gt_cache: dict = {}
    windows = H.new_window_store() if c["cache_gt_windows"] else None
    for r in T.repetitions(range(reps)):
        seed = int(ctx.seed) + r
        # the draw (pass + MM prompts) is the one the evaluation manifest lists (protocols/manifest.py)
        draw, mm_chosen = H.draw_t2m_repetition(split, seed, bs, unit, max_len, c["mm"])
        # GT embeddings: computed once per repetition, reused by the real row and every variant
        text_emb, gt_emb, _ = H.cached_gt_embeddings(ev, split, draw, seed, bs, max_len, windows, gt_cache)
        evaluated = len(gt_emb)
        if c["real_row"]:
            draw2 = H.draw_repetition(split, np.random.default_rng(10_000 + seed), bs, unit, max_len)
            _, gt_emb2, _ = H.embed_batches(ev, draw2, bs, H.gt_motion_fn(draw2, max_len), text=False,
                                           windows=windows, part="evaluator_gt")
            row = _retrieval(text_emb, gt_emb, k)
            row["fid"] = _fid(gt_emb2, gt_emb)
            row["diversity"] = _diversity(gt_emb, c["diversity_times"], seed)
            if physical:
                row.update(gt_physical(draw, bs, max_len, split.dim).means())
            real_rows.append(row)
        for s in step_list:
            phys = PhysicalRow(split.dim)
            gen_fn = H.gen_motion_fn(method, draw, s, codes if s == default_steps else None)
            if physical:
                gen_fn = phys.wrap(gen_fn, lambda idx, d=draw: [d.lengths[i] for i in idx])
            _, gen_emb, _ = H.embed_batches(ev, draw, bs, gen_fn, text=False)
            row = _retrieval(text_emb, gen_emb, k)
            row["fid"] = _fid(gt_emb, gen_emb)
            row["diversity"] = _diversity(gen_emb, c["diversity_times"], seed)
            row.update(phys.means())
            if s == default_steps and c["mm"]["enabled"]:
                mm = H.multimodality_embeddings(method, ev, mm_chosen, c["mm"], draw, s)
                with T.span("metric_multimodality"):
                    row["multimodality"] = G.multimodality(mm, int(c["mm"]["num_times"]), seed=seed)
            gen_rows[s].append(row)
        codes.check(f"text2motion repetition {r + 1}")
        log.info("text2motion repetition %d/%d: %s", r + 1, reps,
                 {k2: round(v, 4) for k2, v in gen_rows[default_steps][-1].items()})

    expected = (len(split) // bs) * bs
    n_samples = {"expected": expected, "evaluated": int(evaluated)}
    sampler = method.sampler_settings() if hasattr(method, "sampler_settings") else {}
    evaluator_meta = {"config": ev.cfg.dataset, "dim_pose": ev.cfg.dim_pose, **{k2: v for k2, v in ev.meta.items()
                                                                               if k2 != "hparams"}}
    common = {"repetitions": reps, "batch_size": bs, "test_motions": len(split), "evaluator": evaluator_meta,
              "mm": c["mm"], "diversity_times": c["diversity_times"],
              "diversity_pairs_used": _diversity_pairs(evaluated, int(c["diversity_times"]))}
    if physical:
        skel, joints = SKELETON_OF_DIM[split.dim]
        common["physical"] = {"skeleton": skel, "joints": joints, "positions": "recover_from_ric of the raw features",
                              "ground_m": 0.0, "definitions": "evaluators/metrics/physical.py"}
    results = []
    if c["real_row"]:
        results.append(ProtocolResult(metrics=_summarise(real_rows), split=c["split"], n_samples=n_samples,
                                      variant="real", extra={**common, "per_repetition": real_rows},
                                      provenance=ev.provenance()))
    for s in step_list:
        metrics = _summarise(gen_rows[s])
        sampler_s = {**dict(sampler or {}), **({"steps": s} if s is not None else {})}
        extra = {**common, "per_repetition": gen_rows[s], "sampler": sampler_s}
        if s == default_steps and codes.summary() is not None:
            extra["generation_codes"] = codes.summary()
        if c["aits"]["enabled"]:
            with T.span("aits"):  # outside the repetitions: once per variant
                a = H.measure_aits(method, split, c["aits"]["num_captions"], s, ctx.device,
                                   int(c["aits"]["warmup"]), seed=int(ctx.seed))
            metrics["aits_s"] = a["aits_s"]
            extra["aits"] = a
        variant = "" if s == default_steps else f"steps={s}"  # the main row keeps the plain identity
        results.append(ProtocolResult(metrics=metrics, split=c["split"], n_samples=n_samples, variant=variant,
                                      extra=extra, provenance=ev.provenance()))
    return results
