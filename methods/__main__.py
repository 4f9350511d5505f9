"""``python -m methods list``, ``python -m methods summary NAME [--scale paper|smoke]`` and
``python -m methods new NAME --capability MotionGenerator|RepresentationLearner [--dir PATH]``.

``summary`` builds the method from ``configs/method/NAME.yaml`` at the scale (no training, no
data) and prints its JSON model card (:meth:`methods.base.Method.summary`): parameter count of
each trained component and their ``total``, frozen pretrained parts listed separately and left
out of the total, and GMACs of one forward where the method defines them.

``new`` writes a working toy method (folder, registered class, method config, a synthetic
experiment, README) into the repository or, with ``--dir``, an outside folder
(``methods/scaffold.py``); a bad name or an existing folder is refused in one line (exit 2).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from omegaconf import OmegaConf

from evaluators.core import validate
from evaluators.core.config import load_config
from evaluators.core.validate import ConfigError
from methods import get_method, list_methods
from methods.registry import UnknownNameError
from methods.scaffold import ScaffoldError, scaffold


def checked_method_config(name: str, scale: str, overrides: list[str]) -> dict:
    """The method config at ``scale`` with ``overrides``, through the runner's checks
    (:mod:`evaluators.core.validate`): known keys, value kinds, counts and sizes in range."""
    where = f"configs/method/{name}.yaml"
    if overrides:
        base = OmegaConf.to_container(OmegaConf.merge(*(load_config("method", name, s) for s in ("paper", "smoke"))))
        validate.check_override_keys(base, overrides, where, "")
        validate.check_override_types(base, overrides, where, "")
    cfg = load_config("method", name, scale, overrides or None)
    validate.check_values(cfg, where)
    return cfg


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded at run time
    ap = argparse.ArgumentParser(prog="python -m methods", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="registered methods, one per line")
    s = sub.add_parser("summary", help="print the JSON model card of a method")
    s.add_argument("name")
    s.add_argument("--scale", choices=("paper", "smoke"), default="paper")
    s.add_argument("overrides", nargs="*", help="method config overrides, KEY=VALUE")
    n = sub.add_parser("new", help="write a working toy method to start from")
    n.add_argument("name")
    n.add_argument("--capability", default="MotionGenerator",
                   help="capability of the toy: MotionGenerator (default) or RepresentationLearner")
    n.add_argument("--dir", default=None, help="an outside folder (with its own configs/) instead of the repository")
    args, extra = ap.parse_known_args(argv)
    # KEY=VALUE overrides may also follow ``--scale`` (argparse closes the positional list at the flag)
    if extra and args.cmd == "summary" and all("=" in e and not e.startswith("-") for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        ap.error(f"unrecognized arguments: {' '.join(extra)}")

    if args.cmd == "new":
        try:
            files = scaffold(args.name, args.capability, args.dir)
        except ScaffoldError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print("\n".join(f"wrote {p}" for p in files))
        return 0
    if args.cmd == "list":
        print("\n".join(list_methods()))
        return 0
    try:
        cls = get_method(args.name)
        cfg = checked_method_config(args.name, args.scale, args.overrides)
    except (UnknownNameError, FileNotFoundError, ValueError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    card = cls(cfg, device="cpu", seed=0, workdir=None).summary()
    card["scale"] = args.scale
    print(json.dumps(card, indent=2, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
