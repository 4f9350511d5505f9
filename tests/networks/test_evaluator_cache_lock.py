"""Two processes that miss the same cached evaluator at once train it once (``entry_lock``).

Two runs started together on a cluster, or two pytest workers, share one cache folder. Without a
lock both see no ``<key>.pt``, both train and both save. The check is on the mechanism, not on
timing: both processes meet at a barrier before calling ``train_evaluator``, and whichever enters
training first waits there (up to ``MEET_S``) for the other to enter too. Without the lock both
get in and the log holds two trainings. With it the second is blocked on the lock, the first gives
up waiting and saves, and the second loads what it saved.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MEET_S = 3  # ours: how long the first trainer waits for the second to enter training too

SCRIPT = r"""
import sys, time
from pathlib import Path
import torch
from evaluators.networks import t2m_train
from tests.networks._tiny import TINY_EVAL_CFG, TinyT2M

me, other, folder, meet_s = sys.argv[1], sys.argv[2], Path(sys.argv[3]), float(sys.argv[4])

def wait_for(path, seconds):
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)

real_fit = t2m_train.fit_evaluator

def counted_fit(*args, **kwargs):
    with open(folder / "trainings.log", "a") as log:
        log.write(me + "\n")
    (folder / f"training-{me}").touch()
    wait_for(folder / f"training-{other}", meet_s)  # both in here at once: nothing kept them apart
    return real_fit(*args, **kwargs)

t2m_train.fit_evaluator = counted_fit
torch.set_num_threads(1)
data = TinyT2M(n=40, k=4)
(folder / f"ready-{me}").touch()
wait_for(folder / f"ready-{other}", 300)  # start training together, whatever the imports cost
ev = t2m_train.train_evaluator(data, steps=3, config_overrides=TINY_EVAL_CFG, seed=0)
print(float(ev.embed_text([data.split("test").captions[0][0]]).sum()))
"""


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_two_processes_missing_the_same_evaluator_train_it_once(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MOTIONREPRO_CACHE=str(tmp_path / "cache"))
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, me, other, str(tmp_path), str(MEET_S)], cwd=REPO,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for me, other in (("a", "b"), ("b", "a"))]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    assert (tmp_path / "trainings.log").read_text().split() in (["a"], ["b"])
    assert len(list((tmp_path / "cache" / "evaluators").glob("*.pt"))) == 1
    assert outs[0][0] == outs[1][0]  # the waiting process loaded the evaluator the other one trained
