"""T2M evaluator: official key layout, renormalisation pitfall, training above chance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluators.metrics.generation import r_precision
from evaluators.networks.t2m_evaluator import CONFIGS, T2MEvaluator, evaluator_config, evaluator_std, read_opt_file
from tests.networks._tiny import TINY_EVAL_CFG, TinyT2M

# parameter names and shapes of the released finest.tar (official networks/modules.py, hidden 512/1024)
OFFICIAL_KEYS = {
    "text_encoder": {"hidden": (2, 1, 512), "pos_emb.weight": (300, 15), "input_emb.weight": (512, 300),
                     "gru.weight_ih_l0": (1536, 512), "gru.weight_hh_l0_reverse": (1536, 512),
                     "output_net.0.weight": (512, 1024), "output_net.1.weight": (512,), "output_net.3.weight": (512, 512)},
    "movement_encoder": {"main.0.weight": (512, 259, 4), "main.3.weight": (512, 512, 4), "out_net.weight": (512, 512)},
    "motion_encoder": {"hidden": (2, 1, 1024), "input_emb.weight": (1024, 512), "gru.weight_ih_l0": (3072, 1024),
                       "output_net.0.weight": (1024, 2048), "output_net.3.weight": (512, 1024)},
}


def _official_layout_state(dim_pose: int) -> dict:
    """A randomly initialised checkpoint in the official layout, built from plain torch modules."""
    import torch.nn as nn

    def seq(i, h, o):
        return nn.Sequential(nn.Linear(i, h), nn.LayerNorm(h), nn.LeakyReLU(0.2), nn.Linear(h, o))

    text = nn.Module()
    text.pos_emb, text.input_emb = nn.Linear(15, 300), nn.Linear(300, 512)
    text.gru, text.output_net = nn.GRU(512, 512, batch_first=True, bidirectional=True), seq(1024, 512, 512)
    text.hidden = nn.Parameter(torch.randn(2, 1, 512))
    mov = nn.Module()
    mov.main = nn.Sequential(nn.Conv1d(dim_pose - 4, 512, 4, 2, 1), nn.Dropout(0.2), nn.LeakyReLU(0.2),
                             nn.Conv1d(512, 512, 4, 2, 1), nn.Dropout(0.2), nn.LeakyReLU(0.2))
    mov.out_net = nn.Linear(512, 512)
    mot = nn.Module()
    mot.input_emb, mot.gru = nn.Linear(512, 1024), nn.GRU(1024, 1024, batch_first=True, bidirectional=True)
    mot.output_net, mot.hidden = seq(2048, 1024, 512), nn.Parameter(torch.randn(2, 1, 1024))
    return {"text_encoder": text.state_dict(), "movement_encoder": mov.state_dict(),
            "motion_encoder": mot.state_dict(), "epoch": 7}


@pytest.mark.parametrize("name,dim", [("humanml3d", 263), ("kit", 251)])
def test_official_layout_loads_strictly(tmp_path, name, dim):
    state = _official_layout_state(dim)
    for part, keys in OFFICIAL_KEYS.items():
        for k, shape in keys.items():
            if part == "movement_encoder" and k == "main.0.weight":
                shape = (512, dim - 4, 4)
            assert tuple(state[part][k].shape) == shape
    path = tmp_path / "finest.tar"
    torch.save(state, path)
    from tests.networks.test_t2m_official_files import _write_glove

    np.save(tmp_path / "mean.npy", np.zeros(dim))
    np.save(tmp_path / "std.npy", np.ones(dim))
    ev = T2MEvaluator.from_official(path, name, glove_dir=_write_glove(tmp_path / "glove"),
                                    mean_path=tmp_path / "mean.npy", std_path=tmp_path / "std.npy")
    assert ev.cfg.dim_pose == dim
    for part in ("text_encoder", "movement_encoder", "motion_encoder"):
        mine = getattr(ev, part).state_dict()
        assert set(mine) == set(state[part])
        for k in mine:
            assert torch.equal(mine[k], state[part][k])
    # a wrong layout is refused
    bad = dict(state)
    bad["text_encoder"] = {k.replace("input_emb", "inp"): v for k, v in state["text_encoder"].items()}
    with pytest.raises(RuntimeError):
        T2MEvaluator(name).load_official_state(bad)


def test_configs_match_released_opt_files(shared_data):
    root = shared_data / "humanml3d" / "evaluator_norms_mdm"
    for name, opt in (("humanml3d", "humanml_opt.txt"), ("kit", "kit_opt.txt")):
        o = read_opt_file(root / opt)
        c = CONFIGS[name]
        assert int(o["dim_text_hidden"]) == c.dim_text_hidden and int(o["unit_length"]) == c.unit_length
        assert int(o["dim_movement_enc_hidden"]) == c.dim_movement_enc_hidden
        assert int(o["dim_movement_latent"]) == c.dim_movement_latent and int(o["max_text_len"]) == c.max_text_len
    assert np.load(root / "t2m_mean.npy").shape == (CONFIGS["humanml3d"].dim_pose,)
    assert np.load(root / "kit_std.npy").shape == (CONFIGS["kit"].dim_pose,)
    # our evaluator-std rule reproduces the released evaluator std from the dataset std
    ours = evaluator_std(np.load(shared_data / "humanml3d" / "HumanML3D" / "Std.npy"), 22)
    np.testing.assert_allclose(ours, np.load(root / "t2m_std.npy"), rtol=0.05)


def test_generator_stats_instead_of_evaluator_stats_change_the_embedding():
    """The MLD FAQ pitfall: normalising generated RAW motions with the generator's stats is wrong."""
    torch.manual_seed(0)
    cfg = evaluator_config("humanml3d", **TINY_EVAL_CFG)
    rng = np.random.default_rng(0)
    ev_mean, ev_std = rng.normal(size=263), rng.uniform(0.5, 2.0, 263)
    gen_mean, gen_std = rng.normal(size=263), rng.uniform(0.5, 2.0, 263)
    ev = T2MEvaluator(cfg, mean=ev_mean, std=ev_std).eval()
    normed_by_generator = torch.from_numpy(rng.normal(size=(2, 48, 263))).float()
    raw = normed_by_generator * torch.tensor(gen_std).float() + torch.tensor(gen_mean).float()  # de-normalised
    right = ev.embed_motion(raw, [48, 40])
    # the evaluator sees exactly (raw - ev_mean) / ev_std
    expected = ev.motion_embedding_normalized(ev.normalize(raw, [48, 40]), [48, 40])
    torch.testing.assert_close(right, expected)
    wrong_ev = T2MEvaluator(cfg, mean=gen_mean, std=gen_std).eval()
    wrong_ev.load_state_dict(ev.state_dict() | {"mean": torch.tensor(gen_mean).float(),
                                                "std": torch.tensor(gen_std).float()})
    wrong = wrong_ev.embed_motion(raw, [48, 40])
    assert (right - wrong).norm() > 1e-2 * right.norm()
    # renorm4t2m helper == de-normalise with the generator's stats, re-normalise with the evaluator's
    from evaluators.networks.t2m_evaluator import renorm_for_evaluator

    rn = renorm_for_evaluator(normed_by_generator, torch.tensor(gen_mean).float(), torch.tensor(gen_std).float(),
                              ev.mean, ev.std)
    torch.testing.assert_close(rn, ev.normalize(raw, [48, 48]))
    # padding beyond the length does not matter (zeroed after evaluator normalisation)
    raw2 = raw.clone()
    raw2[1, 40:] = 123.0
    torch.testing.assert_close(ev.embed_motion(raw2, [48, 40]), right)


@pytest.fixture(scope="module")
def synth_t2m():
    """A small synth_t2m set (generated once into the suite cache, then reused)."""
    from evaluators.datasets.base import load_dataset

    return load_dataset({"name": "synth_t2m", "n_train": 60, "n_val": 5, "n_test": 40, "seed": 0})


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_evaluator_trains_above_chance_on_synth_t2m(synth_t2m):
    from evaluators.networks.t2m_data import pad_batch, t2m_split
    from evaluators.networks.t2m_train import train_evaluator

    torch.set_num_threads(1)
    cfg = {**TINY_EVAL_CFG, "max_motion_length": 100}
    ev = train_evaluator(synth_t2m, steps=100, lr=1e-3, config_overrides=cfg, seed=0, cache=False)
    test = t2m_split(synth_t2m, "test")
    lens = [min(len(m), 100) for m in test.motions]
    m = ev.embed_motion(torch.from_numpy(pad_batch([x[:100] for x in test.motions], 100)), lens).numpy()
    # every caption of the test motions, one caption index per pass (a batch never holds a motion twice):
    # 3 x 32 evaluated pairs instead of 32
    r = np.mean([r_precision(ev.embed_text([test.caption_input(i, k) for i in range(len(test))]).numpy(), m,
                             top_k=3, batch_size=32) for k in range(min(len(c) for c in test.captions))], axis=0)
    # chance R@3 in a batch of 32 is 3/32 ~ 0.094; measured on seeds 0-5 of the fit (1 thread): 0.495, 0.568,
    # 0.422, 0.688, 0.453, 0.396 (with the first caption only 0.375-0.672)
    assert r[2] > 0.3, r


def test_train_evaluator_caches_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path))
    from evaluators.networks.t2m_train import train_evaluator

    data = TinyT2M(n=40, k=4)
    ev = train_evaluator(data, steps=3, config_overrides=TINY_EVAL_CFG, seed=0)
    cached = list((tmp_path / "evaluators").glob("*.pt"))
    assert len(cached) == 1 and not list((tmp_path / "evaluators").glob(".*.tmp"))
    again = train_evaluator(data, steps=3, config_overrides=TINY_EVAL_CFG, seed=0)
    assert again.meta["cache_key"] == ev.meta["cache_key"]
    caps = [c[0] for c in data.split("test").captions[:4]]
    torch.testing.assert_close(again.embed_text(caps), ev.embed_text(caps))
    other = train_evaluator(data, steps=4, config_overrides=TINY_EVAL_CFG, seed=0)
    assert other.meta["cache_key"] != ev.meta["cache_key"]


class _TinyActions:
    """Eight random two-class motions: enough for the action recogniser's cache entry."""

    def split(self, name):
        rng = np.random.default_rng(0)
        return [{"motion": rng.normal(size=(12, 6, 3)).astype(np.float32), "label": i % 2} for i in range(8)]


def _train_both(data):
    """Train (or load) the tiny T2M evaluator and action recogniser under the current cache; the evaluator."""
    from evaluators.networks.action_train import train_recognizer
    from evaluators.networks.t2m_train import train_evaluator

    ev = train_evaluator(data, steps=3, config_overrides=TINY_EVAL_CFG, seed=0)
    train_recognizer(_TinyActions(), kind="a2m_gru", steps=2, batch_size=4, num_frames=12)
    return ev


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_cached_evaluators_are_keyed_by_thread_count_and_torch_version(tmp_path, monkeypatch):
    """The thread count sets the reduction order of CPU kernels, so the same seed can train different
    weights at 1 and at 2 threads; the torch build can change them too. An evaluator (or recogniser) trained under one must not be
    loaded under another: the tests train at 1 thread, the demo then runs at the machine's cores."""
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path))
    data = TinyT2M(n=40, k=4)

    def train_both():
        return _train_both(data).meta["cache_key"]

    def cached() -> int:
        return len(list((tmp_path / "evaluators").glob("*.pt")))

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = train_both()
        assert cached() == 2 and train_both() == one and cached() == 2  # same settings: loaded, not retrained
        torch.set_num_threads(2)
        two = train_both()
        assert two != one and cached() == 4
        torch.set_num_threads(1)
        monkeypatch.setattr(torch, "__version__", "0.0.0+other")
        other = train_both()
        assert other not in (one, two) and cached() == 6
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_cached_evaluators_are_kept_apart_by_how_the_kernels_round(tmp_path, monkeypatch):
    """Two machines whose kernels round differently at the same torch, threads and ISA (an Intel and
    an AMD CPU) train one cache key to different weights. Sharing a cache folder, each must load its
    own model: one trained under the other kernel id is not a hit, though the recorded key is equal."""
    from evaluators.datasets import cache
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path))
    data = TinyT2M(n=40, k=4)

    def on_machine(kernel_id: str) -> tuple[str, torch.Tensor]:
        monkeypatch.setattr(cache, "torch_kernels_id", lambda: kernel_id, raising=False)
        ev = _train_both(data)
        return ev.meta["cache_key"], ev.embed_text([data.split("test").captions[0][0]])

    def entries() -> list[str]:
        return sorted(p.name for p in (tmp_path / "evaluators").glob("*.pt"))

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        key_a, emb_a = on_machine("aaaaaaaaaaaa")
        assert len(entries()) == 2
        key_b, _ = on_machine("bbbbbbbbbbbb")
        assert key_b == key_a  # the records name the same key ...
        assert len(entries()) == 4  # ... but the other machine trained its own entries
        assert [n.rsplit("-", 1)[1] for n in entries()].count("bbbbbbbbbbbb.pt") == 2
        again, emb_again = on_machine("aaaaaaaaaaaa")
        assert again == key_a and len(entries()) == 4  # back on the first machine: its entries are hits
        torch.testing.assert_close(emb_again, emb_a, rtol=0, atol=0)
    finally:
        torch.set_num_threads(before)


def test_movement_autoencoder_pretraining_then_frozen_encoder():
    from evaluators.networks.t2m_train import train_evaluator

    data = TinyT2M(n=40, k=4)
    cfg = {**TINY_EVAL_CFG, "max_motion_length": 64}
    torch.manual_seed(0)
    base = train_evaluator(data, steps=0, config_overrides=cfg, seed=0, cache=False)
    pre = train_evaluator(data, steps=0, movement_pretrain_steps=3, config_overrides=cfg, seed=0, cache=False)
    after = train_evaluator(data, steps=3, movement_pretrain_steps=3, config_overrides=cfg, seed=0, cache=False)
    w0, w1, w2 = (e.movement_encoder.main[0].weight for e in (base, pre, after))
    assert not torch.equal(w0, w1)  # the AE pretraining changed the movement encoder ...
    torch.testing.assert_close(w1, w2)  # ... and the matching stage kept it frozen (official recipe)
    assert not torch.equal(pre.text_encoder.input_emb.weight, after.text_encoder.input_emb.weight)


def test_training_or_loading_an_evaluator_leaves_the_global_generators_alone(tmp_path, monkeypatch):
    """A run that trains its evaluator (cache miss) and one that loads it (the resumed run, a rerun)
    must then draw the same generation noise: both paths leave python / numpy / torch RNGs as they were."""
    import random

    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path))
    from evaluators.core.seeding import seed_everything
    from evaluators.networks.action_train import train_recognizer
    from evaluators.networks.t2m_train import train_evaluator

    class Actions:
        def __init__(self, n):
            rng = np.random.default_rng(0)
            self.items = [{"motion": rng.normal(size=(12, 6, 3)).astype(np.float32), "label": i % 2} for i in range(n)]

        def split(self, name):
            return self.items

    calls = [lambda: train_evaluator(TinyT2M(n=40, k=4), steps=3, config_overrides=TINY_EVAL_CFG, seed=0),
             lambda: train_recognizer(Actions(8), kind="a2m_gru", steps=2, batch_size=4, num_frames=12)]
    for call in calls:
        for _ in ("trained", "loaded from the cache"):
            seed_everything(123)
            call()
            after = (random.random(), float(np.random.rand()), float(torch.rand(())))
            seed_everything(123)
            assert after == (random.random(), float(np.random.rand()), float(torch.rand(())))
