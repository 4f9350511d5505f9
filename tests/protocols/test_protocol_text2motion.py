"""text2motion protocol end to end on tiny synthetic data with a test-only generator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluators.networks.t2m_train import train_evaluator
from evaluators.protocols import RunContext, get_protocol
from evaluators.records import make_record, validate_record
from leaderboards.head_to_head import compare
from tests._clock import FakeClock
from tests.networks._tiny import TINY_EVAL_CFG, WORDS, TinyT2M


class RetrievalGenerator:
    """Test-only MotionGenerator: returns a random training motion of the caption's class (raw features)."""

    task = "text2motion"

    def __init__(self, data, noise=0.0):
        self.train = data.split("train")
        self.noise = noise
        self.rng = np.random.default_rng(0)
        self.calls = []

    def fit(self, dataset):
        pass

    def sampler_settings(self):
        return {"steps": 5, "cfg_scale": 1.0}

    def generate(self, conditions, lengths, steps=None):
        self.calls.append((len(conditions), steps))
        out = np.zeros((len(conditions), max(lengths), self.train.motions[0].shape[1]), np.float32)
        for b, (cap, n) in enumerate(zip(conditions, lengths)):
            verb = next(v for v, _ in WORDS if v in cap)
            pool = [i for i, c in enumerate(self.train.captions) if verb in c[0]]
            m = self.train.motions[int(self.rng.choice(pool))]
            m = np.concatenate([m] * (n // len(m) + 1))[:n]
            out[b, :n] = m + self.noise * self.rng.normal(size=m.shape)
        return torch.from_numpy(out)


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    data = TinyT2M(n=70, k=8, seed=1)
    ev = train_evaluator(data, steps=40, lr=1e-3, config_overrides={**TINY_EVAL_CFG, "max_motion_length": 64},
                         seed=0, cache=False)
    return data, ev


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_text2motion_end_to_end(tiny, tmp_path):
    data, ev = tiny
    gen = RetrievalGenerator(data, noise=0.05)
    spec = get_protocol("text2motion")
    cfg = {"repetitions": 2, "mm": {"num_samples": 3, "num_repeats": 4, "num_times": 2},
           "aits": {"num_captions": 3}, "diversity_times": 20, "steps_sweep": [2, 7]}
    ctx = RunContext(seed=0, extra={"t2m_evaluator": ev})
    results = spec.fn(gen, data, cfg, ctx)
    variants = [r.variant for r in results]
    assert variants == ["real", "", "steps=2", "steps=7"]
    real, main = results[0], results[1]
    # the GT row: its FID (two independent GT passes) is far below a noisy generator's, and GT captions
    # retrieve GT motions above chance
    assert real.metrics["r_precision_top3"]["value"] > 3 / 32 and "aits_s" not in real.metrics
    for key in ("r_precision_top1", "r_precision_top3", "fid", "mm_dist", "diversity"):
        assert np.isfinite(main.metrics[key]["value"]) and main.metrics[key]["ci95"] >= 0
    assert "multimodality" in main.metrics and main.metrics["multimodality"]["value"] > 0
    assert main.metrics["aits_s"] > 0 and main.extra["aits"]["calls"] == 3
    # per-repetition values and the CI formula are visible in the record
    per = [r["fid"] for r in main.extra["per_repetition"]]
    assert len(per) == 2
    assert main.metrics["fid"]["value"] == pytest.approx(np.mean(per))
    assert main.metrics["fid"]["ci95"] == pytest.approx(1.96 * np.std(per) / np.sqrt(2))
    assert main.n_samples == {"expected": 64, "evaluated": 64}  # 70 test motions, drop_last
    assert main.extra["sampler"] == {"steps": 5, "cfg_scale": 1.0}  # method default kept when steps=None
    assert results[2].extra["sampler"]["steps"] == 2 and main.extra["diversity_pairs_used"] == 20
    # sweep variants pass their step count to generate
    assert {s for _, s in gen.calls} >= {None, 2, 7}
    assert "multimodality" not in results[2].metrics and "aits_s" in results[2].metrics
    # the class-faithful generator retrieves well above chance (3/32)
    assert main.metrics["r_precision_top3"]["value"] > 0.2
    from evaluators.records import read_record, write_record

    for r in results:
        rec = make_record(method="retrieval_gen", dataset="tiny_t2m", protocol="text2motion", metrics=r.metrics,
                          data="synthetic", scale="smoke", seed=0, config=cfg, variant=r.variant,
                          n_samples=r.n_samples, extra=r.extra)
        validate_record(rec)
        assert rec["metrics"]["fid"]["higher_is_better"] is False
        back = read_record(write_record(rec, tmp_path))
        assert back["metrics"]["fid"]["ci95"] == pytest.approx(r.metrics["fid"]["ci95"])
        assert len(back["extra"]["per_repetition"]) == 2


def test_text2motion_gen_fid_order_and_gt_embedding_cache(tiny, monkeypatch):
    """A noisy generator scores a worse FID; within one call the GT embeddings of a repetition are
    computed once and reused by every step-count variant; a new call computes its own (per-call cache)."""
    from evaluators.protocols import _t2m_helpers as H

    data, ev = tiny
    calls = []
    orig = H.gt_motion_fn
    monkeypatch.setattr(H, "gt_motion_fn", lambda *a: calls.append(1) or orig(*a))
    ctx = RunContext(seed=3, extra={"t2m_evaluator": ev})
    cfg = {"repetitions": 1, "mm": {"enabled": False}, "aits": {"enabled": False}, "diversity_times": 20,
           "real_row": False}
    good = get_protocol("text2motion").fn(RetrievalGenerator(data, 0.0), data, {**cfg, "steps_sweep": [1, 2]}, ctx)
    assert len(good) == 3 and len(calls) == 1  # three variants, one GT pass
    bad = get_protocol("text2motion").fn(RetrievalGenerator(data, 3.0), data, cfg, ctx)[0]
    assert bad.metrics["fid"]["value"] > good[0].metrics["fid"]["value"]
    assert len(calls) == 2  # a new call: its own GT pass


def test_text2motion_momask_multimodality_subset(tiny, monkeypatch):
    """mm.mode=momask: the first num_batches x 32 prompts of the pass, num_repeats generations each."""
    from evaluators.protocols import text2motion as T

    data, ev = tiny
    shapes = []
    orig = T.G.multimodality
    monkeypatch.setattr(T.G, "multimodality", lambda f, n, seed=0: shapes.append(np.shape(f)) or orig(f, n, seed))
    cfg = {"repetitions": 1, "real_row": False, "aits": {"enabled": False}, "diversity_times": 20,
           "mm": {"mode": "momask", "num_batches": 1, "num_repeats": 3, "num_times": 2}}
    get_protocol("text2motion").fn(RetrievalGenerator(data, 0.05), data, cfg, RunContext(seed=5, extra={"t2m_evaluator": ev}))
    assert shapes == [(32, 3, ev.cfg.dim_coemb_hidden)]
    shapes.clear()
    cfg["mm"] = {"mode": "t2m", "num_samples": 5, "num_repeats": 3, "num_times": 2}
    get_protocol("text2motion").fn(RetrievalGenerator(data, 0.05), data, cfg, RunContext(seed=5, extra={"t2m_evaluator": ev}))
    assert shapes == [(5, 3, ev.cfg.dim_coemb_hidden)]


class ClockedGenerator(RetrievalGenerator):
    """RetrievalGenerator whose every generate call takes exactly ``delay`` s of the test's clock (a wait)."""

    delay = 1.0

    def __init__(self, data, noise, clock: FakeClock):
        super().__init__(data, noise)
        self.clock = clock

    def generate(self, conditions, lengths, steps=None):
        self.clock.sleep(self.delay)
        return super().generate(conditions, lengths, steps)


def test_text2motion_timing_spans_split_a_repetition(tiny, monkeypatch):
    """The protocol's spans put generate's time in `generation`, each evaluator call's time in its
    own part, and their sum is the repetition's time. A clock the test moves (generate waits 1 s,
    a motion embedding works 0.25 s, a text embedding 0.125 s; nothing else moves it) gives every
    part's exact value, whatever the machine's load."""
    from evaluators.protocols._timing import Spans, share_outside

    data, ev = tiny
    clock = FakeClock()
    gen = ClockedGenerator(data, 0.05, clock)
    embed_motion, embed_text = ev.embed_motion, ev.embed_text

    def timed_motion(*a, **k):
        clock.work(0.25)
        return embed_motion(*a, **k)

    def timed_text(*a, **k):
        clock.work(0.125)
        return embed_text(*a, **k)

    monkeypatch.setattr(ev, "embed_motion", timed_motion)
    monkeypatch.setattr(ev, "embed_text", timed_text)
    rec = Spans(clock=clock.wall, cpu_clock=clock.cpu)
    cfg = {"repetitions": 1, "aits": {"enabled": False}, "diversity_times": 20,
           "mm": {"num_samples": 2, "num_repeats": 3, "num_times": 2}}
    get_protocol("text2motion").fn(gen, data, cfg, RunContext(seed=11, extra={"t2m_evaluator": ev, "timing": rec}))
    (parts,) = rec.repetitions
    n_calls = len(gen.calls)  # 2 main batches + 2 MultiModality prompts
    assert parts["generation"] == {"wall_s": n_calls * 1.0, "cpu_s": 0.0, "calls": 4} and n_calls == 4
    # GT pass + second GT pass: 2 + 2 GT-evaluator calls (2 batches each, fresh caches); generations +
    # MultiModality: 2 + 2 motion-evaluator calls; captions: 2 text calls
    assert parts["evaluator_gt"] == {"wall_s": 4 * 0.25, "cpu_s": 4 * 0.25, "calls": 4}
    assert parts["evaluator_motion"] == {"wall_s": 4 * 0.25, "cpu_s": 4 * 0.25, "calls": 4}
    assert parts["evaluator_text"] == {"wall_s": 2 * 0.125, "cpu_s": 2 * 0.125, "calls": 2}
    assert {"metric_fid", "metric_retrieval", "metric_diversity", "metric_multimodality", "data"} <= set(parts)
    # every tick of the clock happened inside the repetition, and each in exactly one part
    total = sum(v["wall_s"] for v in parts.values())
    assert total == clock.wall_s == 4 * 1.0 + 8 * 0.25 + 2 * 0.125
    assert share_outside(parts) == 1 - 4.0 / total


def test_text2motion_gt_window_cache_matches_recomputation(tiny, monkeypatch):
    """cache_gt_windows reuses GT crop embeddings across repetitions: fewer motions embedded, the same
    metrics as recomputing every crop (up to fp32 rounding of another batch composition)."""
    from evaluators.protocols import _t2m_helpers as H

    data, ev = tiny
    embedded = []
    orig = ev.embed_motion
    monkeypatch.setattr(ev, "embed_motion", lambda raw, lengths: embedded.append(len(lengths)) or orig(raw, lengths))
    stores = []
    monkeypatch.setattr(H, "new_window_store", lambda: stores.append({}) or stores[-1])
    out = {}
    for on in (False, True):
        embedded.clear()
        cfg = {"repetitions": 4, "aits": {"enabled": False}, "diversity_times": 20, "mm": {"enabled": False},
               "cache_gt_windows": on}
        res = get_protocol("text2motion").fn(RetrievalGenerator(data, 0.05), data, cfg,
                                            RunContext(seed=2, extra={"t2m_evaluator": ev}))
        out[on] = (res, sum(embedded))
    (plain, n0), (cached, n1) = out[False], out[True]
    for a, b in zip(plain, cached):
        for ra, rb in zip(a.extra["per_repetition"], b.extra["per_repetition"]):
            assert ra.keys() == rb.keys()
            for k in ra:
                assert rb[k] == pytest.approx(ra[k], rel=1e-4, abs=1e-5), k
    # without the cache: GT pass, second GT pass and generations, 64 motions each, in each of 4 repetitions
    assert n0 == 4 * 3 * 64
    (windows,) = stores  # one store, for the cached call only
    assert n1 == 4 * 64 + len(windows) < n0  # generations, plus every distinct GT window once


def test_text2motion_numbers_do_not_depend_on_an_earlier_call_in_the_process(tiny, monkeypatch):
    """Same seed, same numbers, bit for bit, whatever ran before in the process: the GT caches
    are per call (a crop embedded in another batch composition differs in the last bits, which
    moved a resumed run's metrics against the uninterrupted run's when the cache was global).
    The tiny evaluator's kernels happen to be batch-invariant, so the last-bit dependence on the
    batch that real BLAS blocking gives is modelled by a 1e-6 relative term of the batch's size.
    A fresh copy of the evaluator (same weights, a new object) is the process that ran nothing."""
    import copy

    data, ev = tiny
    fresh = copy.deepcopy(ev)
    for e in (ev, fresh):
        monkeypatch.setattr(e, "embed_motion",
                            (lambda f: lambda raw, lengths: f(raw, lengths) * (1 + 1e-6 * len(lengths)))(e.embed_motion))
    cfg = {"repetitions": 2, "aits": {"enabled": False}, "diversity_times": 20, "mm": {"enabled": False}}

    def run(seed, e):
        return get_protocol("text2motion").fn(RetrievalGenerator(data, 0.05), data, cfg,
                                             RunContext(seed=seed, extra={"t2m_evaluator": e}))

    run(100, ev)  # an earlier call with overlapping GT crops
    after = run(101, ev)
    alone = run(101, fresh)
    for a, b in zip(after, alone):
        assert a.extra["per_repetition"] == b.extra["per_repetition"]
        assert a.metrics == b.metrics


class SlidingGenerator:
    """Test-only MotionGenerator: every joint on the floor, the root moving at ``speed`` m/s along x.

    In the HumanML3D features, channel 1 is the root's x displacement per frame and the ``ric``
    block the joints relative to the root: zeros there put the whole body at the root on y = 0.
    """

    task = "text2motion"

    def __init__(self, speed: float, fps: float = 20.0):
        self.step = speed / fps

    def fit(self, dataset):
        pass

    def generate(self, conditions, lengths, steps=None):
        out = torch.zeros(len(conditions), max(lengths), 263)
        for b, n in enumerate(lengths):
            out[b, :n, 1] = self.step
        return out


@pytest.mark.parametrize("speed, skating", [(0.0, 0.0), (2.0, 1.0), (0.3, 0.0)])
def test_physical_metrics_in_both_rows_match_the_closed_form(tiny, speed, skating):
    """A still body and a body sliding on the floor: skating ratio 0 or 1 (every frame, speed > 0.5 m/s),
    zero jerk (constant velocity), no penetration and no floating (every joint on y = 0)."""
    data, ev = tiny
    cfg = {"repetitions": 1, "mm": {"enabled": False}, "aits": {"enabled": False}, "diversity_times": 20}
    real, main = get_protocol("text2motion").fn(SlidingGenerator(speed), data, cfg,
                                                RunContext(seed=0, extra={"t2m_evaluator": ev}))
    m = main.metrics
    assert m["skating_ratio"]["value"] == pytest.approx(skating)
    assert m["jerk_body"]["value"] == pytest.approx(0.0, abs=1e-6)
    assert m["penetrate_mm"]["value"] == 0.0 and m["float_mm"]["value"] == 0.0
    # the authors' convention divides by the padded batch length: never above the per-sequence ratio
    assert m["skating_ratio_authors"]["value"] <= m["skating_ratio"]["value"] + 1e-12
    # the GT row carries the same keys, from the test motions
    assert set(real.metrics) >= {"skating_ratio", "skating_ratio_authors", "penetrate_mm", "float_mm", "jerk_body"}
    assert main.extra["physical"]["skeleton"] == "humanml3d"
    rec = make_record(method="sliding", dataset="tiny", protocol="text2motion", metrics=main.metrics,
                      data="synthetic", scale="smoke", seed=0, config={}, extra=main.extra)
    assert rec["metrics"]["jerk_body"]["unit"] == "m/s^3" and rec["metrics"]["float_mm"]["unit"] == "mm"


def test_a_noisier_generator_comes_out_significantly_worse(tiny):
    """Same seeds for both generators: the head-to-head page calls the noisy one worse in FID."""
    data, ev = tiny
    cfg = {"repetitions": 4, "mm": {"enabled": False}, "aits": {"enabled": False}, "diversity_times": 20,
           "real_row": False}
    recs = []
    for name, noise in (("clean", 0.0), ("noisy", 0.5)):
        (res,) = get_protocol("text2motion").fn(RetrievalGenerator(data, noise=noise), data, cfg,
                                                RunContext(seed=0, extra={"t2m_evaluator": ev}))
        recs.append({"method": name, "extra": res.extra})
    comp = compare(recs[1], recs[0])["fid"]
    assert comp["excludes_zero"] and comp["verdict"] == "A worse" and comp["diff"] > 0
