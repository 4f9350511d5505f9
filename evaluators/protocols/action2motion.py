"""Action-to-motion protocol (HumanAct12 / UESTC), as ACTOR and MLD evaluate it.

Source: ACTOR ``src/evaluate/action2motion/evaluate.py`` / ``stgcn_eval.py`` (``a2m`` and
``stgcn`` evaluations), MLD ``mld/models/metrics/uncond.py`` / ``HUMANACT12Metrics``. Per
repetition r (seed ``ctx.seed + r``; torch seeded with it before the generations, as ACTOR
seeds each evaluation round). The HumanAct12 GRU recogniser draws a random initial state per
call, as the official ``initHidden`` does; here each recogniser pass (training references, test
references, real row, generated set) draws it from its own generator seeded from ``(seed + r,
pass)`` (:func:`metric_generator`), so the evaluator's randomness never shares a stream with the
generator's: a submission scored from files (``evaluators/score.py``) meets the same recogniser
noise as the in-process run, and its motions the same generation noise:

- reference clips: ACTOR's "conseq" sampling of ``num_frames`` (60) consecutive frames per
  motion (padded with the last frame when shorter; ``num_frames: null`` = whole motions), first
  frame's root at the origin (as the action datasets' ``torch_dataset``);
- generated set: one generation per test clip, with that clip's action label and length
  (``method.generate(labels, lengths, steps)`` -> ``[B, T, J, 3]`` motions, root-centred the same
  way);
- ``accuracy``: the recogniser's top-1 accuracy on the generated motions w.r.t. the labels they
  were conditioned on;
- ``fid_train`` / ``fid_test``: FID between the recogniser features of the generated set and of
  the training / test motions (``fid_test`` only when the dataset has a test split distinct from
  the training split; HumanAct12 has none and reports FID_train only);
- ``diversity`` (200 pairs, with replacement) and ``multimodality`` (20 same-label pairs per
  action) of the generated features;
- physical plausibility (``physical.enabled``; not in ACTOR/MLD): foot skating ratio (GMD, both
  conventions), ground penetration / floating (PhysDiff) and jerk per joint group, on the clips'
  joint positions (metres, the dataset's ``up`` and ``fps``), for the generated and the real
  rows alike. The clips are root-centred, so each sequence's floor is its lowest foot joint
  (ours; :mod:`evaluators.metrics.physical`). Left out for a dataset that does not state which
  way is up or whose joints are not HumanAct12's 24 / UESTC's 18.

The real row (variant ``real``) evaluates the reference motions themselves. Every metric is the
mean with 1.96 std / sqrt(R) over R repetitions (ACTOR/MLD use 20).
"""

from __future__ import annotations

import logging
import random

import numpy as np
import torch

from evaluators.metrics import action as A
from evaluators.metrics.generation import confidence_interval
from evaluators.networks.action_train import (
    action_split,
    actor_clip,
    load_recognizer,
    num_classes,
    pad_motions,
    recognizer_outputs,
    train_recognizer,
)
from evaluators.protocols._physical_rows import action_physical, action_skeleton
from evaluators.protocols._t2m_helpers import resolve_device
from evaluators.protocols.registry import ProtocolResult, RunContext, complete_config, register_protocol

log = logging.getLogger(__name__)


# one stream per recogniser pass of a repetition (metric_generator)
TRAIN_REF, TEST_REF, REAL, GENERATED = range(4)


def metric_generator(seed: int, stream: int) -> torch.Generator:
    """The CPU generator of recogniser pass ``stream`` in the repetition with seed ``seed``
    (numpy ``SeedSequence([seed, stream])``: independent streams, none of them the global RNG)."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([int(seed), int(stream)]).generate_state(1)[0]))


def _has_split(data, name: str) -> bool:
    names = getattr(data, "split_names", None)
    if names is not None:
        return name in names
    try:
        data.split(name)
        return True
    except (KeyError, ValueError, FileNotFoundError):
        return False


def draw_clips(train, test, num_frames: int | None, seed: int) -> tuple[list, list]:
    """Repetition ``seed``'s reference clips (ACTOR "conseq" sampling of ``num_frames``,
    root-centred): training clips first, then test clips (``test=None``: the training clips
    serve as both), from one ``random.Random(seed)``. Their lengths are the generation lengths;
    the protocol and the evaluation manifest (``evaluators/protocols/manifest.py``) both call this.
    """
    clip_rng = random.Random(seed)
    tr_clips = [actor_clip(m, num_frames, clip_rng) for m in train.motions]
    te_clips = [actor_clip(m, num_frames, clip_rng) for m in test.motions] if test is not None else tr_clips
    return tr_clips, te_clips


def _generate(method, labels: np.ndarray, lengths: list[int], steps, bs: int) -> tuple[torch.Tensor, torch.Tensor]:
    outs = []
    with torch.inference_mode():
        for i in range(0, len(labels), bs):
            lab = [int(v) for v in labels[i:i + bs]]
            ln = lengths[i:i + bs]
            out = method.generate(lab, ln, steps) if steps is not None else method.generate(lab, ln)
            # same representation as the reference clips: first-frame root at the origin
            outs.append([actor_clip(o[:n], None, None) for o, n in zip(torch.as_tensor(out).float().cpu().numpy(), ln)])
    flat = [m for part in outs for m in part]
    return pad_motions(flat)


def _row(logits, feats, labels, ref_train, ref_test, n_cls, seed, c) -> dict[str, float]:
    row = {"accuracy": A.accuracy(logits, labels), "fid_train": A.fid_train(ref_train, feats),
           "diversity": A.diversity_a2m(feats, int(c["diversity_times"]), seed=seed),
           "multimodality": A.multimodality_a2m(feats, labels, n_cls, int(c["multimodality_times"]), seed=seed)}
    if ref_test is not None:
        row["fid_test"] = A.fid_test(ref_test, feats)
    return row


@register_protocol("action2motion", needs="MotionGenerator", tasks="action2motion")
def action2motion(method, data, cfg: dict, ctx: RunContext) -> list[ProtocolResult]:
    """Action-conditioned generation: FID_train / FID_test, accuracy, diversity, multimodality (± 95% CI)."""
    c = complete_config("action2motion", cfg)
    train = action_split(data, c["train_split"])
    has_test = c["test_split"] != c["train_split"] and _has_split(data, c["test_split"])
    test = action_split(data, c["test_split"]) if has_test else train
    n_cls = num_classes(data, train)
    rc = c["recognizer"]
    net = (ctx.extra or {}).get("action_recognizer")
    if net is None and rc.get("checkpoint"):
        net = load_recognizer(rc["checkpoint"], rc["kind"], train.motions[0], n_cls, rc.get("network"),
                              getattr(data, "kinematic_chain", None))
    if net is None:
        net = train_recognizer(data, split=c["train_split"], kind=rc["kind"], network=dict(rc.get("network") or {}),
                               **{"num_frames": c["num_frames"], **dict(rc.get("train") or {})})

    dev = resolve_device(ctx.device)
    net = net.to(dev).eval()
    bs = int(c["batch_size"])
    skeleton = action_skeleton(data, test.motions) if c["physical"]["enabled"] else None
    if c["physical"]["enabled"] and skeleton is None:
        log.info("action2motion: physical metrics left out (%s states no up direction, or its motions are not "
                 "HumanAct12/UESTC joint positions of >= 4 frames)", getattr(data, "name", "the dataset"))
    phys = {"skeleton": skeleton, "up": getattr(data, "up", None), "fps": float(getattr(data, "fps", 0.0))}
    real_rows, gen_rows = [], []
    for r in range(int(c["repetitions"])):
        seed = int(ctx.seed) + r
        torch.manual_seed(seed)
        tr_clips, te_clips = draw_clips(train, test if has_test else None, c["num_frames"], seed)
        lengths = [len(m) for m in te_clips]
        _, f_train = recognizer_outputs(net, *pad_motions(tr_clips), generator=metric_generator(seed, TRAIN_REF))
        lo_test, f_test = recognizer_outputs(net, *pad_motions(te_clips), generator=metric_generator(seed, TEST_REF)) \
            if has_test else (None, None)
        ref_test = f_test if has_test else None
        if c["real_row"]:
            ref_labels = test.labels if has_test else train.labels
            # without a test split the real row re-encodes the training clips (a second pass, as
            # ACTOR compares two GT loaders); its fid_train then measures the evaluator's noise
            lo_real, f_real = (lo_test, f_test) if has_test else \
                recognizer_outputs(net, *pad_motions(tr_clips), generator=metric_generator(seed, REAL))
            real_rows.append(_row(lo_real, f_real, ref_labels, f_train, None, n_cls, seed, c))
            if skeleton is not None:
                real_rows[-1].update(action_physical(*pad_motions(te_clips), **phys))
        gx, glen = _generate(method, test.labels, lengths, c["steps"], bs)
        lo_gen, f_gen = recognizer_outputs(net, gx, glen, generator=metric_generator(seed, GENERATED))
        gen_rows.append(_row(lo_gen, f_gen, test.labels, f_train, ref_test, n_cls, seed, c))
        if skeleton is not None:
            gen_rows[-1].update(action_physical(gx, glen, **phys))
        log.info("action2motion repetition %d: %s", r + 1, {k: round(v, 4) for k, v in gen_rows[-1].items()})

    def summary(rows):
        return {k: dict(zip(("value", "ci95"), confidence_interval([row[k] for row in rows]))) for k in rows[0]}

    n_samples = {"expected": len(test), "evaluated": len(test)}
    common = {"repetitions": int(c["repetitions"]), "recognizer": rc["kind"], "num_classes": n_cls,
              "fid_test_reported": has_test, "diversity_times": c["diversity_times"],
              "multimodality_times": c["multimodality_times"]}
    if skeleton is not None:
        common["physical"] = {**phys, "joints": int(test.motions[0].shape[1]), "units": "m",
                              "positions": "the clips' joint positions (first-frame root at the origin)",
                              "ground": "per sequence: the lowest foot joint over its valid frames (ours)",
                              "definitions": "evaluators/metrics/physical.py"}
    out = []
    if c["real_row"]:
        out.append(ProtocolResult(summary(real_rows), split=c["test_split"] if has_test else c["train_split"],
                                  n_samples=n_samples, variant="real", extra={**common, "per_repetition": real_rows}))
    sampler = method.sampler_settings() if hasattr(method, "sampler_settings") else {}
    out.append(ProtocolResult(summary(gen_rows), split=c["test_split"] if has_test else c["train_split"],
                              n_samples=n_samples, extra={**common, "per_repetition": gen_rows,
                                                          "sampler": {**dict(sampler or {}), "steps": c["steps"]}}))
    return out
