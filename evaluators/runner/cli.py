"""The command line: ``--list``, ``--demo``, ``--experiment METHOD DATASET``, ``--estimate``,
``--cfg job``, else the hydra run (``-m`` for sweeps and the SLURM launcher).

A plain run is composed once, here: the composition that turns hydra's errors into ``exit 2`` is
planned (:func:`evaluators.runner.plan.build_plan`) and that plan is what the hydra job runs;
hydra only supplies the run folder and logging. A sweep (``-m``) plans each job from the
composition hydra gives it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import TypeVar

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from evaluators.core import distributed as D
from evaluators.core.config import CONFIG_DIR
from evaluators.core.io import DiskFull
from evaluators.core.run_lock import RunFolderBusy
from evaluators.core.safe_load import CheckpointError
from evaluators.core.validate import ConfigError
from evaluators.datasets import DatasetError
from evaluators.runner.compose import compose, dataset_alias, searchpath_override, split_flags, upsert
from evaluators.runner.demo import demo, listing
from evaluators.runner.estimate import estimate
from evaluators.runner.execute import execute
from evaluators.runner.experiment_help import experiment_help
from evaluators.runner.finish import finish
from evaluators.runner.names import check_experiment_override, experiment_name, load_plugins
from evaluators.runner.plan import RunPlan, build_plan
from evaluators.runner.score import main as score_command

T = TypeVar("T")
# flags after which hydra does not run the job itself (help, info) or runs several (-m)
_NO_PLAIN_RUN = ("-m", "--multirun", "--help", "-h", "--hydra-help", "--info", "-i")
# hydra names the job (its log file) after the task's module; the runner's job has always been "run"
_JOB_NAME = "hydra.job.name=run"


def guard(fn: Callable[[], T]) -> T:
    """Turn user-fixable errors into ``exit 2`` with their message only."""
    try:
        return fn()
    except (ConfigError, DatasetError, CheckpointError, RunFolderBusy, DiskFull) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def run_job(cfg: DictConfig, planned: RunPlan | None) -> None:
    """One hydra job: run the plan (made from ``cfg`` unless the command line made it) and finish."""
    if planned is None:
        overrides = list(HydraConfig.get().overrides.task)
        planned = guard(lambda: build_plan(cfg, overrides))
    records = guard(lambda: execute(planned))
    if D.is_main():
        print(guard(lambda: finish(records, planned.runs_dir, planned.leaderboards)))


def describe(cfg: DictConfig, overrides: list[str]) -> str:
    """``--cfg job``: the composed run config plus the resolved group configs it will use."""
    text = OmegaConf.to_yaml(cfg, resolve=False)
    try:
        p = build_plan(cfg, overrides, check_data=False)
    except Exception as e:  # still show the composition; say why resolution stopped
        return text + f"# resolved group configs unavailable: {e}\n"
    resolved = {"method": p.method_cfg, "datasets": {d.name: d.dataset_cfg for d in p.datasets},
                "protocols": p.protocol_cfgs}
    if cfg.get("per_dataset"):  # the per-dataset settings: one method config (and protocol configs) per dataset
        resolved["per_dataset"] = {d.config_name: {"method": d.method_cfg, "protocols": d.protocol_cfgs}
                                   for d in p.datasets}
    return text + "# resolved at scale=" + str(cfg.scale) + " (what the run uses)\n" + \
        OmegaConf.to_yaml({"resolved": resolved})


def _estimate(argv: list[str]) -> str:
    """``--estimate [--estimate-from=BENCH.json]``: the run's cost table, nothing trained."""
    estimate_from = next((a.split("=", 1)[1] for a in argv if a.startswith("--estimate-from=")), None)
    argv = [a for a in argv if a != "--estimate" and not a.startswith("--estimate-from=")]
    _, overrides = split_flags(argv)
    guard(lambda: check_experiment_override(overrides))
    composed = guard(lambda: compose(overrides))
    planned = guard(lambda: build_plan(composed, overrides, check_data=False))
    return guard(lambda: estimate(planned, composed, estimate_from))


def main(argv: list[str] | None = None) -> None:
    """CLI: ``--list``, ``--demo [--only M]``, ``--manifest|--score|--export ...``, ``--experiment METHOD DATASET [overrides]``, ``--cfg job``,
    ``--estimate``, else the hydra run (``-m`` for sweeps)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded at run time
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(name)s] %(message)s")
    load_plugins()
    if argv[:1] == ["--list"]:
        print(listing())
        return
    if argv[:1] == ["--demo"]:
        sys.exit(guard(lambda: demo(argv[1:])))
    if argv[:1] in (["--manifest"], ["--score"], ["--export"]):  # evaluate models not run here
        sys.exit(score_command(argv[0][2:], argv[1:]))
    if argv[:1] == ["--experiment"]:  # ./reproduce.sh METHOD DATASET [overrides]
        if len(argv) < 3:
            print("error: usage: --experiment METHOD DATASET [overrides]", file=sys.stderr)
            sys.exit(2)
        name = guard(lambda: experiment_name(argv[1], argv[2]))
        if any(a in ("--help", "-h") for a in argv[3:]):  # ./reproduce.sh METHOD DATASET --help
            print(experiment_help(argv[1], name))
            return
        argv = [f"+experiment={name}", *argv[3:]]
    argv = [upsert(dataset_alias(a)) for a in argv]
    if any(a == "--estimate" or a.startswith("--estimate-from=") for a in argv):  # the cost, no run
        print(_estimate(argv))
        return
    flags, overrides = split_flags(argv)
    guard(lambda: check_experiment_override(overrides))
    planned = None
    if not any(f in _NO_PLAIN_RUN for f in flags):
        composed = guard(lambda: compose(overrides))  # hydra's own override errors as one line, exit 2
        for i, f in enumerate(flags):
            if f in ("--cfg", "-c") and flags[i + 1:i + 2] == ["job"]:
                print(guard(lambda: describe(composed, overrides)))
                return
        if not flags or set(flags) <= {"-r", "--run"}:  # a plain run: this composition is the run's plan
            planned = guard(lambda: build_plan(composed, overrides))

    def task(cfg: DictConfig) -> None:
        run_job(cfg, planned)

    # hydra's parser wants its flags before the overrides (``... +experiment=x -m seed=0,1`` works too)
    sys.argv = [sys.argv[0], *flags, _JOB_NAME, *overrides, *searchpath_override()]
    try:
        hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="run")(task)()
    finally:  # under torchrun: leave the process group before the interpreter tears it down
        D.shutdown_distributed()

