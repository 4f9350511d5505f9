"""``python -m evaluators.run --list`` and ``--demo``: registry listing and the bundled-data demo.

The demo runs every registered (non-test) method at ``scale=smoke`` on the synthetic dataset
its method config names in ``demo_experiment``: an experiment config (e.g. ``mld_synth-t2m``), or
a list of them run in order (a generator with a text and an action chain names both, so the
gallery shows each), then regenerates the leaderboards under ``${runs_dir}/leaderboards``,
exports the site's gallery and training curves there (:mod:`evaluators.runner.gallery`; ``python -m leaderboards.site --source
runs/leaderboards`` shows them) and prints a short table of the demo's records and of each
method's wall time. ``--records-only`` stops after the records (and the summary table): no
leaderboards regenerated, no gallery exported, for a caller that only reads the records (the
published-records rerun of the test suite); the records are the same either way.
"""

from __future__ import annotations

import argparse
import logging
import time
import traceback
from pathlib import Path

import pandas as pd

from evaluators.core.config import load_config
from evaluators.core.validate import ConfigError
from evaluators.datasets import dataset_info, list_datasets
from evaluators.protocols import get_protocol, list_protocols
from evaluators.runner.compose import compose
from evaluators.runner.execute import run_experiment
from evaluators.runner.finish import finish
from evaluators.runner.gallery import export_gallery
from evaluators.runner.names import experiments_by_method
from methods import get_method, list_methods
from methods.base import capabilities_of

log = logging.getLogger("evaluators.runner.run")


def listing() -> str:
    """Methods (with their experiment datasets), datasets and protocols, from the registries."""
    exps = experiments_by_method()
    lines = ["Methods (./reproduce.sh METHOD DATASET):"]
    for m in list_methods():
        cls = get_method(m)
        lines.append(f"  {m:<17} task={cls.task or '?':<14} datasets: {', '.join(exps.get(m, [])) or '(no experiment yet)'}"
                     f"  [{', '.join(capabilities_of(cls))}]")
    lines.append("Datasets (configs/dataset/, registered loaders):")
    for d in list_datasets():
        info = dataset_info(d)
        lines.append(f"  {d:<16} task={info['task']:<14} source={info['source']}")
    lines.append("Protocols (configs/protocol/):")
    for p in list_protocols():
        spec = get_protocol(p)
        lines.append(f"  {p:<16} needs={'+'.join(spec.needs):<22} tasks={','.join(spec.tasks):<28} {spec.description}")
    return "\n".join(lines)


def demo_experiments(method: str) -> list[str | None]:
    """The experiments the demo runs for ``method``, in order: its config's ``demo_experiment``, one
    name or a list (``[None]`` when it has none: the demo reports that method as failed)."""
    exp = load_config("method", method, "smoke").get("demo_experiment")
    if isinstance(exp, str) or not exp:
        return [exp or None]
    if not all(isinstance(e, str) and e for e in exp):
        raise ConfigError(f"configs/method/{method}.yaml: demo_experiment must be an experiment name or a list of "
                          f"them, got {exp!r}")
    return list(exp)


def demo(argv: list[str]) -> int:
    """Run the demo; returns the exit code (1 if any method failed)."""
    ap = argparse.ArgumentParser(prog="./reproduce.sh demo")
    ap.add_argument("--only", nargs="+", default=None, help="run only these methods")
    ap.add_argument("--records-only", action="store_true",
                    help="write the records only: skip regenerating the leaderboards and exporting the gallery")
    ap.add_argument("overrides", nargs="*", help="hydra overrides for every run (e.g. seed=1)")
    args = ap.parse_args(argv)
    names = args.only or list_methods()
    for n in names:
        get_method(n)  # unknown name -> one-line error before anything runs
        demo_experiments(n)  # a malformed demo_experiment -> one error naming the file, before anything runs
    if not names:
        log.warning("no methods are registered yet: nothing to train; showing the existing records only")
    records: list[dict] = []
    timing, failed = [], []
    t_all = time.perf_counter()
    runs_dir = Path("runs")
    for name in names:
        for exp in demo_experiments(name):
            t0 = time.perf_counter()
            try:
                if not exp:
                    raise ValueError(f"configs/method/{name}.yaml has no demo_experiment key")
                cfg = compose([f"+experiment={exp}", "scale=smoke", *args.overrides])
                runs_dir = Path(str(cfg.runs_dir))
                recs = run_experiment(cfg, args.overrides)
                records += recs
                status = f"ok ({len(recs)} records)"
            except Exception as e:  # noqa: BLE001 - one method failing must not hide the others
                log.error("demo of %s (%s) failed:\n%s", name, exp or "-", traceback.format_exc())
                failed.append(name)
                status = f"FAILED: {str(e).splitlines()[0][:80] if str(e) else type(e).__name__}"
            timing.append({"method": name, "experiment": exp or "-", "wall_s": f"{time.perf_counter() - t0:.1f}",
                           "status": status})
    failed = list(dict.fromkeys(failed))  # a method counts once however many of its chains failed
    print(finish(records, runs_dir, regenerate=not args.records_only))
    if records and not args.records_only:
        try:  # the gallery is a convenience beside the records: its failure must not fail the demo
            print(f"gallery:      {export_gallery(records, runs_dir / 'leaderboards')} (the site's gallery page and "
                  f"training curves; `--out leaderboards` of `python -m evaluators.runner.gallery` publishes them)")
        except Exception as e:  # noqa: BLE001 - see above
            log.warning("demo: the gallery was not exported (%s)", e)
    if timing:
        print(pd.DataFrame(timing).to_markdown(index=False, tablefmt="github", disable_numparse=True))
    print(f"demo: {len(names) - len(failed)}/{len(names)} methods ok in {time.perf_counter() - t_all:.1f} s; "
          + ("records only" if args.records_only else f"leaderboards in {runs_dir / 'leaderboards'}"))
    return 1 if failed else 0
