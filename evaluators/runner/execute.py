"""Run a :class:`~evaluators.runner.plan.RunPlan`: per dataset, train (or load the checkpoint),
run every protocol, write one record per result.

A record's ``config.method`` and its provenance come from the same per-dataset method config
(``DatasetPlan.method_cfg``), so a record never describes another dataset's settings.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from omegaconf import DictConfig

from evaluators import provenance as P
from evaluators.core import distributed as D
from evaluators.core.run_lock import hold_run_folder
from evaluators.core.seeding import seed_everything
from evaluators.core.validate import ConfigError, probe_writable
from evaluators.datasets import load_dataset
from evaluators.protocols import RunContext
from evaluators.protocols.pose import checkpoint_scorer
from evaluators.records import make_record, write_record
from evaluators.runner.finish import check_records_folders
from evaluators.runner.plan import DatasetPlan, RunPlan, build_plan
from methods.base import PoseEstimator, RepresentationLearner

log = logging.getLogger("evaluators.runner.run")


def run_experiment(cfg: DictConfig, overrides: list[str] | None = None) -> list[dict]:
    """Plan a composed config and run it end to end; returns the records written (on the main rank)."""
    return execute(build_plan(cfg, list(overrides or [])))


def execute(plan: RunPlan) -> list[dict]:
    """Run every dataset of the plan; returns the records written (on the main rank)."""
    D.init_distributed()
    if D.is_main():  # before any work: a read-only folder would otherwise lose the run at the end
        probe_writable(plan.runs_dir, "runs_dir")
        probe_writable(plan.records_dir, "records_dir")
        if plan.leaderboards:
            check_records_folders(plan.runs_dir)
    records: list[dict] = []
    for ds in plan.datasets:
        # one process per run folder: an identical run started beside this one waits for it, then
        # resumes from its finished checkpoint (under torchrun rank 0 holds it for every rank)
        held = hold_run_folder(ds.workdir, wait=run_lock_wait()) if D.is_main() else contextlib.nullcontext()
        with held:
            records += run_dataset(plan, ds)
    return records


def run_lock_wait() -> bool | float:
    """How long a run waits for a run folder another process holds: ``$MOTIONREPRO_RUN_LOCK_WAIT``
    seconds (``0``: stop at once with one line), as long as it takes when unset."""
    raw = os.environ.get("MOTIONREPRO_RUN_LOCK_WAIT", "").strip()
    if not raw:
        return True
    try:
        seconds = float(raw)
    except ValueError:
        raise ConfigError(f"MOTIONREPRO_RUN_LOCK_WAIT={raw!r}: expected a number of seconds (0: do not wait)") from None
    if seconds < 0:
        raise ConfigError(f"MOTIONREPRO_RUN_LOCK_WAIT={raw!r}: must be >= 0")
    return seconds if seconds > 0 else False


def _train_or_load(plan: RunPlan, ds: DatasetPlan, method, data) -> str:
    """Train the method on ``data`` (or load ``checkpoint=``); returns the checkpoint the record names."""
    if plan.checkpoint:
        try:  # a mismatched setup is refused in one line naming the fix (exit 2)
            method.load_checkpoint(plan.checkpoint)
        except (ValueError, FileNotFoundError, KeyError) as e:
            raise ConfigError(f"checkpoint={plan.checkpoint}: {str(e).splitlines()[0] if str(e) else e!r}") from e
        except RuntimeError as e:  # torch's load_state_dict: "Error(s) in loading state_dict ... size mismatch"
            if "state_dict" not in str(e) and "size mismatch" not in str(e):
                raise
            raise ConfigError(f"checkpoint={plan.checkpoint}: does not fit the configured model: "
                              f"{_first_mismatch(str(e))}") from e
        return plan.checkpoint
    if isinstance(method, RepresentationLearner):
        method.pretrain(data)
    elif isinstance(method, PoseEstimator):  # the pose protocol scores the best-checkpoint validation
        method.fit(data, validate=checkpoint_scorer(data))
    else:
        method.fit(data)
    ckpt = str(ds.workdir / "method.pt")
    if D.is_main() and hasattr(method, "save_checkpoint"):
        method.save_checkpoint(ckpt)
    D.barrier()
    return ckpt


def _first_mismatch(msg: str) -> str:
    """The first ``size mismatch for ...`` (or missing/unexpected key) line of a load_state_dict error."""
    lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
    return next((ln for ln in lines if ln.startswith("size mismatch")), lines[1] if len(lines) > 1 else lines[0])


def check_checkpoint_fits(plan: RunPlan, ds: DatasetPlan) -> None:
    """Load ``checkpoint=`` into a throw-away model of the configured size: a shape mismatch (a smoke
    checkpoint given to a paper-scale run) is a ConfigError in seconds, not after the data is built.

    The model used for the run is built again afterwards from the same seed, so the run's numbers
    are those of a run without this check."""
    seed_everything(plan.seed)
    probe = plan.method_cls(dict(ds.method_cfg), device="cpu", seed=plan.seed, workdir=None)
    try:
        _train_or_load(plan, ds, probe, None)
    finally:
        del probe


def run_dataset(plan: RunPlan, ds: DatasetPlan) -> list[dict]:
    """One training and every protocol on one dataset; the records written (on the main rank)."""
    t0 = time.perf_counter()
    mcfg, dcfg = ds.method_cfg, ds.dataset_cfg
    log.info("dataset %s (%s, %s) -> workdir %s", ds.name, ds.source, plan.scale, ds.workdir)
    if plan.checkpoint:  # a checkpoint that does not fit the configured model stops before the data is built
        check_checkpoint_fits(plan, ds)
    seed_everything(plan.seed)
    data = load_dataset(dcfg)
    method = plan.method_cls(dict(mcfg), device=plan.device, seed=plan.seed, workdir=ds.workdir)
    ckpt = _train_or_load(plan, ds, method, data)
    train_s = time.perf_counter() - t0
    # what decides comparability (weights, text encoder, ours.* config values); protocols add theirs.
    # From THIS dataset's method config: the one the record stores under config.method
    base_prov = P.collect(method, method_cfg=mcfg, workdir=ds.workdir, checkpoint=plan.checkpoint)
    ctx = RunContext(seed=plan.seed, device=plan.device, workdir=ds.workdir, data_source=ds.source, scale=plan.scale,
                     rank=D.rank(), world_size=D.world_size(), extra={"dataset_cfg": dcfg, "method_cfg": mcfg})
    records = []
    for spec in plan.protocols:
        pcfg = ds.protocol_cfgs[spec.name]
        t1 = time.perf_counter()
        seed_everything(plan.seed)
        out = spec.fn(method, data, pcfg, ctx)
        proto_s = time.perf_counter() - t1
        if not D.is_main():
            continue
        for res in out if isinstance(out, list) else [out]:
            if not res.n_samples:
                log.warning("protocol %s returned no n_samples (expected vs evaluated)", spec.name)
            rec = make_record(
                method=plan.method, dataset=ds.name, protocol=spec.name, metrics=res.metrics,
                data=ds.source, scale=plan.scale, seed=plan.seed, split=res.split, variant=res.variant,
                n_samples=res.n_samples, wall_s=train_s + proto_s,
                config={"run": plan.run_cfg, "method": mcfg, "dataset": dcfg, "protocol": pcfg},
                extra={**res.extra, "train_wall_s": train_s, "protocol_wall_s": proto_s, "checkpoint": ckpt,
                       "device": plan.device, "world_size": D.world_size(),
                       **({"trust_pickles": True} if dcfg.get("trust_pickles") else {})},
                provenance=P.merge(base_prov, res.provenance))
            path = write_record_or_fallback(rec, plan.records_dir)
            log.info("wrote %s", path)
            records.append(rec)
    return records


def fallback_records_dir() -> Path:
    """Where records go when ``records_dir`` turned unwritable during the run."""
    return Path(os.environ.get("MOTIONREPRO_FALLBACK_RECORDS", Path(tempfile.gettempdir()) / "motionrepro-records"))


def write_record_or_fallback(rec: dict, records_dir: Path) -> Path:
    """``write_record``; if ``records_dir`` cannot be written, the fallback folder (and say so)."""
    try:
        return write_record(rec, records_dir)
    except OSError as e:
        fb = fallback_records_dir()
        path = write_record(rec, fb)
        log.warning("records_dir %s is not writable (%s): record written to %s instead", records_dir,
                    e.strerror or e, path)
        print(f"warning: records_dir {records_dir} is not writable; record saved to {path}", file=sys.stderr)
        return path
