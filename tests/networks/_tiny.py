"""Tiny synthetic text-motion data shared by the evaluator/protocol tests (test-only)."""

from __future__ import annotations

import numpy as np

WORDS = [("walk", "forward"), ("jump", "up"), ("turn", "left"), ("kick", "right"), ("sit", "down"),
         ("wave", "hand"), ("run", "back"), ("spin", "clockwise")]


class TinySplit:
    def __init__(self, motions, captions, names):
        self.motions, self.captions, self.names = motions, captions, names


class TinyT2M:
    """``n`` motions of ``dim`` features in ``k`` classes; class c has its own frequency/channel pattern."""

    name = "tiny_t2m"
    task = "text2motion"

    def __init__(self, n=96, dim=263, k=8, seed=0, tmin=40, tmax=64):
        rng = np.random.default_rng(seed)
        self._splits = {}
        for split, count in (("train", n), ("test", n)):
            motions, caps, names = [], [], []
            for i in range(count):
                c = int(rng.integers(k))
                t = int(rng.integers(tmin, tmax + 1))
                time = np.arange(t)[:, None] / 10.0
                base = np.zeros((t, dim), np.float32)
                ch = np.arange(dim)
                base += np.sin(time * (1 + c) + ch[None] * 0.1) * ((ch % k) == c)[None]
                base += 0.5 * c / k
                motions.append((base + 0.05 * rng.normal(size=base.shape)).astype(np.float32))
                verb, adv = WORDS[c % len(WORDS)]
                caps.append([f"a person {verb}s {adv}", f"someone will {verb} {adv}"])
                names.append(f"{split}{i:04d}")
            self._splits[split] = TinySplit(motions, caps, names)
        allf = np.concatenate(self._splits["train"].motions)
        self.mean, self.std = allf.mean(0), allf.std(0) + 1e-2
        self.labels = None

    def split(self, name):
        return self._splits[name]


TINY_EVAL_CFG = dict(dim_text_hidden=48, dim_motion_hidden=48, dim_coemb_hidden=32, dim_movement_enc_hidden=48,
                     dim_movement_latent=48)
