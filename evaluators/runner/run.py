"""The runner: ``python -m evaluators.run +experiment=METHOD_DATASET [overrides]``.

Data flow (DESIGN.md "Data flow of the main job"): hydra composes ``configs/run.yaml`` with an
experiment (``method``, ``datasets``, ``protocols``, the paper's settings) and a scale, once
(:mod:`~evaluators.runner.compose`); :mod:`~evaluators.runner.plan` resolves that composition into
a typed :class:`~evaluators.runner.plan.RunPlan` (per dataset: its dataset, method and protocol
configs at that scale and its work folder), checking everything that can fail cheaply;
:mod:`~evaluators.runner.execute` trains each dataset's method (``pretrain`` for a
RepresentationLearner, else ``fit``) or loads ``checkpoint=PATH``, runs every protocol and writes
one run record per result; :mod:`~evaluators.runner.finish` regenerates the leaderboards under
``${runs_dir}/leaderboards`` and prints a short table. :mod:`~evaluators.runner.cli` is the
command line.

Override scheme (group configs are resolved by the plan, not by hydra, so a user override is
applied AFTER the ``scales`` block and always wins):

- ``method_cfg.KEY=V``            -> the method config
- ``dataset.root=/data/ntu``      -> every dataset of the run (any dataset key, e.g. ``dataset.n=10``)
- ``protocol_cfg.NAME.KEY=V``     -> protocol NAME's config
- ``scale=smoke``, ``seed=1``, ``device=cuda``, ``checkpoint=PATH``, ``runs_dir=...``

Extra config folders (searched before ``configs/``) and plugin modules (imported first, e.g.
to register an outside method) come from ``$MOTIONREPRO_CONFIG_PATH`` and
``$MOTIONREPRO_PLUGINS`` (``:``/``,``-separated). Errors a user can fix (unknown names, a real
dataset not on disk, a protocol the method cannot serve) exit 2 with the message and nothing else.

This module keeps the names other code imports from it (re-exported from the modules above).
"""

from __future__ import annotations

from evaluators.core.validate import ConfigError
from evaluators.runner.cli import describe, main
from evaluators.runner.compose import GROUP_PREFIXES, GROUP_PREFIXES_BY_GROUP, compose, group_overrides, split_flags
from evaluators.runner.execute import fallback_records_dir, run_experiment
from evaluators.runner.finish import REPO, finish
from evaluators.runner.names import (
    check_experiment_override,
    experiment_name,
    experiments_by_method,
    load_plugins,
    split_experiment,
)
from evaluators.runner.plan import (
    PER_DATASET_KEYS,
    DatasetPlan,
    RunPlan,
    build_plan,
    load_config_dict,
    per_dataset,
    resolve_device,
)
from evaluators.runner.plan import build_plan as plan

__all__ = ["GROUP_PREFIXES", "GROUP_PREFIXES_BY_GROUP", "PER_DATASET_KEYS", "REPO", "ConfigError", "DatasetPlan",
           "RunPlan", "build_plan", "check_experiment_override", "compose", "describe", "experiment_name",
           "experiments_by_method", "fallback_records_dir", "finish", "group_overrides", "load_config_dict",
           "load_plugins", "main", "per_dataset", "plan", "resolve_device", "run_experiment", "split_experiment",
           "split_flags"]


if __name__ == "__main__":
    main()
