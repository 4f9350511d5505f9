"""Building blocks of the text2motion protocol: evaluator choice, one repetition, MM, AITS.

Kept apart from ``text2motion.py`` so each stays small. Sources are cited in that module.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from evaluators.networks.t2m_data import T2MSplit, crop_like_official, crop_window_official, pad_batch, t2m_split
from evaluators.networks.t2m_evaluator import T2MEvaluator, resolve_official_files
from evaluators.networks.t2m_train import train_evaluator
from evaluators.protocols._timing import span

log = logging.getLogger(__name__)

try:  # evaluators.core.distributed is written by another engineer; fall back to one process
    from evaluators.core.distributed import gather_concat, shard_indices
except ImportError:  # pragma: no cover - exercised only before that module lands
    def shard_indices(n: int, num_shards=None, shard=None) -> np.ndarray:
        return np.arange(int(n), dtype=np.int64)

    def gather_concat(x):
        return x


def build_evaluator(data: Any, ecfg: dict, ctx) -> Any:
    """The released evaluator when ``ecfg['checkpoint']`` is set, else one trained on the train split (cached).

    ``ctx.extra['t2m_evaluator']`` (an already-built :class:`T2MEvaluator`) takes precedence,
    so a runner evaluating several protocols or methods builds it once.
    """
    ev = (ctx.extra or {}).get("t2m_evaluator")
    if ev is None:
        name = evaluator_name(data, ecfg)
        # $T2M_EVALUATOR_ROOT locates the released files for real data (a synthetic set has its own
        # feature statistics and no released evaluator); an explicit checkpoint always counts
        if getattr(ctx, "data_source", "real") == "real" or ecfg.get("checkpoint") or ecfg.get("root"):
            ecfg = resolve_official_files(ecfg, name)
        if ecfg.get("checkpoint"):
            ev = T2MEvaluator.from_official(ecfg["checkpoint"], name, glove_dir=ecfg.get("glove_dir"),
                                            mean_path=ecfg.get("mean"), std_path=ecfg.get("std"))
    if ev is None:
        ev = train_evaluator(data, split=ecfg["train_split"], config=ecfg.get("config"),
                             **dict(ecfg.get("train") or {}))
    return ev.to(resolve_device(ctx.device)).eval()


def evaluator_name(data: Any, ecfg: dict) -> str:
    """``evaluator.config`` if set, else from the dataset's feature width (263 -> humanml3d, 251 -> kit)."""
    if ecfg.get("config"):
        return str(ecfg["config"])
    try:
        dim = int(t2m_split(data, "test").dim)
    except Exception:  # a dataset without a test split: the HumanML3D evaluator
        return "humanml3d"
    return {251: "kit"}.get(dim, "humanml3d")


def resolve_device(device) -> torch.device:
    """``auto``/None -> this process's CUDA device when available, else CPU."""
    if device in (None, "auto"):
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    return torch.device(device)


def new_window_store() -> dict[tuple[int, int, int], np.ndarray]:
    """An empty GT-window embedding store ``{(motion, start, m_len): [D]}`` for ONE protocol call
    (shared by its repetitions and GT passes; never across calls, so a run's numbers do not depend
    on what ran before it in the process)."""
    return {}


def cached_gt_embeddings(ev, split: T2MSplit, draw: RepetitionDraw, seed: int, batch_size: int, max_len: int,
                         windows: dict | None, cache: dict):
    """GT text/motion embeddings of one repetition's pass, computed once per repetition ``seed`` in
    ``cache`` (one protocol call: its evaluator, split and batch size are fixed).

    They never depend on the method, so the real row and every step-count variant of the call reuse them.
    ``windows`` (:func:`new_window_store`) also reuses the embedding of every GT crop window
    already embedded by an earlier repetition of the same call.
    """
    hit = cache.get(seed)
    if hit is None:
        hit = embed_batches(ev, draw, batch_size, gt_motion_fn(draw, max_len), windows=windows, part="evaluator_gt")
        cache[seed] = hit
    return hit


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def call_generate(method, captions: list[str], lengths: list[int], steps: int | None) -> torch.Tensor:
    """``method.generate`` under inference mode; returns a CPU float tensor ``[B, T, D]`` (raw features)."""
    with span("generation"), torch.inference_mode():
        out = method.generate(captions, lengths, steps) if steps is not None else method.generate(captions, lengths)
        out = torch.as_tensor(out).detach().float().cpu()
    if out.ndim != 3 or out.shape[0] != len(captions):
        raise ValueError(f"{type(method).__name__}.generate returned shape {tuple(out.shape)}, expected "
                         f"[{len(captions)}, T, D]")
    return out


@dataclass
class RepetitionDraw:
    """One repetition's loader pass: shuffled order (drop_last batches), captions and crops."""

    order: np.ndarray              # [n_eval] test indices in evaluation order
    cap_inputs: list               # evaluator input per sample (tokens or caption string)
    captions: list[str]            # caption string per sample (what the generator sees)
    crops: list[np.ndarray]        # GT crop per sample [m_len, D] (raw)
    lengths: list[int]             # GT lengths (multiples of unit_length)
    extra: dict = field(default_factory=dict)
    windows: list[tuple[int, int, int]] = field(default_factory=list)  # (test index, crop start, m_len)


def draw_repetition(split: T2MSplit, rng: np.random.Generator, batch_size: int, unit_length: int,
                    max_len: int) -> RepetitionDraw:
    """``DataLoader(shuffle=True, drop_last=True)`` + Text2MotionDatasetV2 item draws, seeded."""
    with span("data"):
        return _draw(split, rng, batch_size, unit_length, max_len)


def _draw(split: T2MSplit, rng: np.random.Generator, batch_size: int, unit_length: int, max_len: int) -> RepetitionDraw:
    n_eval = (len(split) // batch_size) * batch_size
    if n_eval == 0:
        raise ValueError(f"test split has {len(split)} motions, fewer than one batch of {batch_size}")
    order = rng.permutation(len(split))[:n_eval]
    cap_inputs, captions, crops, lengths, windows, cap_index = [], [], [], [], [], []
    for i in order:
        j = int(rng.integers(len(split.captions[i])))
        cap_index.append(j)
        cap_inputs.append(split.caption_input(int(i), j))
        captions.append(split.captions[i][j])
        start, m_len = crop_window_official(len(split.motions[i]), rng, unit_length, max_len)
        crops.append(split.motions[i][start:start + m_len])
        lengths.append(m_len)
        windows.append((int(i), start, m_len))
    return RepetitionDraw(order, cap_inputs, captions, crops, lengths, extra={"caption_index": cap_index},
                          windows=windows)


def embed_batches(ev, draw: RepetitionDraw, batch_size: int, motion_fn, text: bool = True,
                  windows: dict | None = None, part: str = "evaluator_motion"):
    """Embed this rank's batches (sharded by batch), gather in order.

    ``motion_fn(batch_indices) -> raw motions [B, T, D]`` gives the motions to embed (GT crops
    or generations). Returns ``(text_emb or None, motion_emb, n_local)`` as numpy arrays.
    ``windows`` (GT crops only, :func:`new_window_store`): embeddings by crop window; only the
    windows not in it are embedded (one evaluator call per batch), then stored in it. ``part``:
    the timing span of the motion evaluator (``evaluator_gt`` for GT crops).
    """
    n_batches = len(draw.order) // batch_size
    mine = shard_indices(n_batches)
    t_parts, m_parts = [], []
    for b in mine:
        idx = list(range(int(b) * batch_size, (int(b) + 1) * batch_size))
        if windows is not None and draw.windows:
            m_parts.append(_embed_windows(ev, draw, idx, motion_fn, windows, part))
        else:
            lens = [draw.lengths[i] for i in idx]
            motions = motion_fn(idx)
            with span(part):
                m_parts.append(ev.embed_motion(motions, lens).cpu().numpy())
        if text:
            with span("evaluator_text"):
                t_parts.append(ev.embed_text([draw.cap_inputs[i] for i in idx]).cpu().numpy())
    dim = ev.cfg.dim_coemb_hidden
    m_local = np.concatenate(m_parts) if m_parts else np.zeros((0, dim), np.float32)
    t_local = (np.concatenate(t_parts) if t_parts else np.zeros((0, dim), np.float32)) if text else None
    m_all = gather_concat(m_local)
    t_all = gather_concat(t_local) if text else None
    return t_all, m_all, len(mine) * batch_size


def _embed_windows(ev, draw: RepetitionDraw, idx: list[int], motion_fn, windows: dict,
                   part: str = "evaluator_gt") -> np.ndarray:
    """Motion embeddings of samples ``idx``, from ``windows`` where cached, else embedded and stored.

    ours: the official evaluations re-embed every GT crop in every repetition (T2M
    final_evaluations.py:155-172, MoMask utils/eval_t2m.py:976); an embedding depends only on
    the crop (no op mixes samples), so a cached one equals a recomputed one up to fp32 rounding
    of a different batch composition (~1e-6).
    """
    miss = [i for i in idx if draw.windows[i] not in windows]
    if miss:
        motions = motion_fn(miss)
        with span(part):
            emb = ev.embed_motion(motions, [draw.lengths[i] for i in miss]).cpu().numpy()
        for i, e in zip(miss, emb):
            windows[draw.windows[i]] = e
    return np.stack([windows[draw.windows[i]] for i in idx])


def gt_motion_fn(draw: RepetitionDraw, max_len: int):
    def fn(idx):
        with span("data"):
            return torch.from_numpy(pad_batch([draw.crops[i] for i in idx], max_len))
    return fn


def gen_motion_fn(method, draw: RepetitionDraw, steps: int | None, codes: CodeDiversity | None = None):
    def fn(idx):
        out = call_generate(method, [draw.captions[i] for i in idx], [draw.lengths[i] for i in idx], steps)
        if codes is not None:
            codes.update(method)
        return out
    return fn


class CodeDiversity:
    """Debug check on token generators: distinct codes per RVQ layer over the evaluated batches.

    A method that exposes ``last_generation_codes() -> [B, N, Q]`` (-1 = pad; MoMask, HGM3) is
    read after every evaluation batch. :meth:`check` raises (``mode="error"``) or warns
    (``"warn"``) when a layer produced a single code over at least ``min_tokens`` tokens, the
    signature of a broken sampler (a NaN Gumbel draw once made every residual code 0). The
    summary goes into the record's ``extra["generation_codes"]``.
    """

    def __init__(self, mode: str = "error", min_tokens: int = 16) -> None:
        if mode not in ("error", "warn", "off"):
            raise ValueError(f"debug_checks.residual_codes must be error|warn|off, got {mode!r}")
        self.mode, self.min_tokens = mode, int(min_tokens)
        self.seen: list[set[int]] = []
        self.tokens = 0

    def update(self, method) -> None:
        fn = getattr(method, "last_generation_codes", None)
        if self.mode == "off" or not callable(fn):
            return
        ids = fn()
        if ids is None:
            return
        ids = torch.as_tensor(ids).reshape(-1, torch.as_tensor(ids).shape[-1])
        valid = ids[:, 0] >= 0
        self.tokens += int(valid.sum())
        while len(self.seen) < ids.shape[1]:
            self.seen.append(set())
        for q in range(ids.shape[1]):
            col = ids[valid, q]
            self.seen[q].update(col[col >= 0].unique().tolist())

    def summary(self) -> dict | None:
        if not self.seen:
            return None
        return {"distinct_codes_per_layer": [len(s) for s in self.seen], "tokens": self.tokens}

    def check(self, where: str) -> None:
        if not self.seen or self.mode == "off" or self.tokens < self.min_tokens:
            return
        bad = [q for q, s in enumerate(self.seen) if len(s) <= 1]
        if bad:
            msg = (f"{where}: generated RVQ layer(s) {bad} used a single code over {self.tokens} tokens "
                   f"(distinct codes per layer {[len(s) for s in self.seen]}); a collapsed sampler "
                   "(e.g. NaN Gumbel noise) or an untrained model. Set debug_checks.residual_codes=warn to continue")
            if self.mode == "error":
                raise RuntimeError(msg)
            log.warning(msg)


def mm_prompts(rng: np.random.Generator, mcfg: dict, n_eval: int, batch_size: int) -> np.ndarray:
    """Positions (in the repetition's evaluated pass) of the MultiModality prompts.

    ``mode: t2m`` (T2M / MLD): ``num_samples`` (100) prompts drawn at random from the evaluated
    pass. ``mode: momask``: the first ``num_batches`` (3) batches of the pass (3 x 32 prompts).
    """
    if mcfg["mode"] == "momask":
        return np.arange(min(n_eval, int(mcfg["num_batches"]) * batch_size))
    return rng.choice(n_eval, min(n_eval, int(mcfg["num_samples"])), replace=False)


def draw_t2m_repetition(split: T2MSplit, seed: int, batch_size: int, unit_length: int, max_len: int,
                        mcfg: dict | None) -> tuple[RepetitionDraw, np.ndarray | None]:
    """Everything repetition ``seed`` asks of a generator: the evaluated pass and the MM prompts.

    One generator ``default_rng(seed)`` draws the pass (:func:`draw_repetition`), then the MM
    prompts (:func:`mm_prompts`; ``None`` when ``mcfg`` is None or disabled), in this order, as
    the protocol always has. The protocol and the evaluation manifest
    (``evaluators/protocols/manifest.py``) both call this, so a manifest is the protocol's draw.
    """
    rng = np.random.default_rng(seed)
    draw = draw_repetition(split, rng, batch_size, unit_length, max_len)
    chosen = None
    if mcfg is not None and mcfg["enabled"]:
        chosen = mm_prompts(rng, mcfg, len(draw.order), batch_size)
    return draw, chosen


def multimodality_embeddings(method, ev, chosen: np.ndarray, mcfg: dict, draw: RepetitionDraw,
                             steps: int | None) -> np.ndarray:
    """``[C, K, 512]`` embeddings of K (``num_repeats``, 30) generations for each of the C prompts
    ``chosen`` (:func:`mm_prompts`)."""
    k = int(mcfg["num_repeats"])
    mine = shard_indices(len(chosen))
    parts = []
    for c in chosen[mine]:
        gen = call_generate(method, [draw.captions[c]] * k, [draw.lengths[c]] * k, steps)
        with span("evaluator_motion"):
            parts.append(ev.embed_motion(gen, [draw.lengths[c]] * k).cpu().numpy()[None])
    local = np.concatenate(parts) if parts else np.zeros((0, k, ev.cfg.dim_coemb_hidden), np.float32)
    return gather_concat(local)


def measure_aits(method, split: T2MSplit, n: int | None, steps: int | None, device: str, warmup: int = 1,
                 seed: int = 0) -> dict:
    """Average inference time per sentence at batch 1 over the first ``n`` test captions (MLD ``COUNT_TIME``).

    Wall clock around ``method.generate([caption], [length])`` with ``torch.cuda.synchronize``
    on GPU before and after; ``warmup`` untimed calls first (CUDA/kernel initialisation).
    """
    rng = np.random.default_rng(seed)
    count = len(split) if n is None else min(int(n), len(split))
    dev = resolve_device(device)
    items = [(split.captions[i][0], crop_like_official(split.motions[i], rng)[1]) for i in range(count)]
    for cap, m_len in items[:warmup]:
        call_generate(method, [cap], [m_len], steps)
    times = []
    for cap, m_len in items:
        _sync(dev)
        t0 = time.perf_counter()
        call_generate(method, [cap], [m_len], steps)
        _sync(dev)
        times.append(time.perf_counter() - t0)
    return {"aits_s": float(np.mean(times)), "calls": len(times), "warmup": warmup,
            "median_s": float(np.median(times))}
