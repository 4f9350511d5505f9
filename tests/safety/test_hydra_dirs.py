"""Each process gets its own hydra output folder, even when two start in the same second.

The clock that ``${now:...}`` reads is frozen inside the subprocesses (``hydra.core.utils.datetime``),
so the two runs below are "started in the same second" by construction; before ``${motionrepro.unique:}``
they got the same ``hydra.run.dir`` / ``hydra.sweep.dir``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from evaluators.core.resolvers import UNIQUE, register_resolvers, unique_token

REPO = Path(__file__).resolve().parents[2]

APP = """
import datetime as dt, sys
import hydra.core.utils as hu
from hydra.core.hydra_config import HydraConfig

class Frozen(dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls(2026, 1, 1, 12, 0, 0)

hu.datetime = Frozen  # the clock behind ${now:...}: both runs "start in the same second"
from evaluators.core.resolvers import register_resolvers
register_resolvers()  # what the runner does before hydra composes
import hydra

def app(cfg):
    print("OUT", HydraConfig.get().runtime.output_dir)

runs, config_dir, *flags = sys.argv[1:]
sys.argv = [sys.argv[0], *flags, f"runs_dir={runs}", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]
hydra.main(version_base="1.3", config_path=config_dir, config_name="run")(app)()
"""


def _output_dirs(tmp: Path, *flags: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", APP, str(tmp / "runs"), str(REPO / "configs"), *flags], env=env, cwd=tmp,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        outs += [ln.split(" ", 1)[1] for ln in out.splitlines() if ln.startswith("OUT ")]
    return outs


@pytest.mark.parametrize("mode", ["run", "multirun"])
def test_two_processes_started_in_the_same_second_get_two_hydra_folders(tmp_path, mode):
    dirs = _output_dirs(tmp_path, *(["-m", "seed=0"] if mode == "multirun" else []))
    assert len(dirs) == 2 and dirs[0] != dirs[1], dirs
    stamp = "2026-01-01/12-00-00_"  # the readable date/time part is kept
    assert all(stamp in d and Path(d).is_dir() for d in dirs), dirs


def test_unique_token_is_stable_within_a_process_and_resolves_in_yaml():
    register_resolvers()
    register_resolvers()  # idempotent
    cfg = OmegaConf.create({"a": f"x_${{{UNIQUE}:}}", "b": f"${{{UNIQUE}:}}"})
    assert cfg.a == f"x_{unique_token()}" and cfg.b == unique_token()
    assert unique_token().startswith(f"{os.getpid()}-")
