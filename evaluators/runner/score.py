"""``./reproduce.sh manifest | score | export``: evaluate models that were not run here.

- ``manifest PROTOCOL DATASET --out m.json [scale=S seed=N KEY=V ...]`` writes the evaluation
  manifest (``evaluators/protocols/manifest.py``): what a submission must generate;
- ``score PROTOCOL DATASET SUBMISSION [runs_dir=... KEY=V ...]`` checks the submission folder
  (``evaluators/protocols/submission.py``; any problem: exit 2, one line, nothing written), replays
  it through the protocol (``evaluators/score.py``) and writes ordinary run records whose
  provenance says ``weights: submitted`` (+ the submission's sha256 and metadata);
- ``export METHOD DATASET --manifest m.json --out DIR checkpoint=PATH [seed=N device=D
  method_cfg.K=V]`` answers a manifest with a registered method: a submission folder
  (``linear``: ``pooling=mean|joint``; ``coco_ap``: ``boxes=det|gt``).

``KEY=V`` without a known prefix is a protocol config override (``repetitions=5``); ``dataset.K=V``
overrides the dataset config. ``scale`` and ``seed`` of ``score`` default to those of the manifest
the submission answers.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from evaluators import provenance as P
from evaluators import score as S
from evaluators.core.config import load_config
from evaluators.core.safe_load import CheckpointError
from evaluators.core.seeding import seed_everything
from evaluators.core.validate import ConfigError
from evaluators.datasets import DatasetError
from evaluators.protocols._t2m_helpers import call_generate
from evaluators.protocols.manifest import SCHEMA, write_manifest
from evaluators.protocols.submission import SubmissionError, load_coco_results, load_submission, read_meta
from evaluators.protocols.submission_arrays import load_feature_submission, load_pairs_submission
from evaluators.records import make_record, write_record
from evaluators.runner import export_arrays as X
from evaluators.runner.plan import resolve_device
from methods.registry import UnknownNameError, get_method

log = logging.getLogger("evaluators.runner.score")
# the evaluator-side setting the papers used: decides a submitted record's comparability, as the
# method configs' ``paper_setting`` does for the suite's own records (evaluators/provenance.py)
# (the action2motion protocol records no evaluator entry yet, so, like the suite's own MLD action
# records, a submitted one says "evaluator not recorded" until the official recogniser is wired in)
EVALUATOR_SETTING = {"text2motion": {"evaluator": "official", "word_vectors": "glove"},
                     "action2motion": {"evaluator": "official"}, "coco_ap": {}, "pose": {}, "linear": {},
                     "reconstruction": {}}
_RUN_KEYS = ("scale", "seed", "device", "runs_dir", "records_dir", "checkpoint", "pooling", "boxes")
ARRAY_PROTOCOLS = ("linear", "reconstruction", *S.POSE_PROTOCOLS)  # exported by evaluators/runner/export_arrays.py


def parse(args: list[str], positional: int, options: tuple[str, ...]) -> tuple[list[str], dict, dict, list, list, list]:
    """``(positionals, --options, run keys, protocol dotlist, dataset dotlist, method dotlist)``."""
    pos, opts, run, proto, data, meth = [], {}, {}, [], [], []
    it = iter(args)
    for a in it:
        if a.startswith("--"):
            name, _, val = a[2:].partition("=")
            if name not in options:
                raise ConfigError(f"unknown option --{name} (options: {', '.join('--' + o for o in options)})")
            opts[name] = val or next(it, None)
            if opts[name] is None:
                raise ConfigError(f"--{name} needs a value")
        elif "=" in a:
            k, v = a.split("=", 1)
            if k in _RUN_KEYS:
                run[k] = v
            elif k.startswith("dataset."):
                data.append(f"{k[len('dataset.'):]}={v}")
            elif k.startswith("method_cfg."):
                meth.append(f"{k[len('method_cfg.'):]}={v}")
            else:
                proto.append(f"{k.split('.', 2)[2] if k.startswith('protocol_cfg.') else k}={v}")
        else:
            pos.append(a)
    if len(pos) != positional:
        raise ConfigError(f"expected {positional} arguments, got {len(pos)}: {' '.join(pos) or '(none)'}")
    return pos, opts, run, proto, data, meth


def _dataset_name(name: str) -> str:
    """The dataset config of a name as the experiments spell it (``synth-ntu`` -> ``synth_ntu``)."""
    if name in ("kit", "kit-ml"):
        return "kit_ml"
    return name.replace("-", "_") if name.startswith("synth-") else name


def _setup(protocol: str, dataset: str, scale: str | None, proto: list, data: list) -> S.Setup:
    try:
        return S.setup(protocol, _dataset_name(dataset), scale, proto, data)
    except (ValueError, FileNotFoundError) as e:  # an unknown name or value: the user's to fix
        raise ConfigError(str(e).splitlines()[0]) from None


def manifest_main(args: list[str]) -> str:
    """``manifest PROTOCOL DATASET --out FILE``; returns the path written."""
    (protocol, dataset), opts, run, proto, data, _ = parse(args, 2, ("out",))
    if "out" not in opts:
        raise ConfigError("manifest: --out FILE is required")
    s = _setup(protocol, dataset, run.get("scale"), proto, data)
    m = S.manifest_for(s, int(run.get("seed", 0)))
    return str(write_manifest(m, opts["out"]))


def read_manifest(path: str | Path) -> dict:
    """A manifest file, checked to be one."""
    p = Path(path)
    try:
        m = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{p}: not a readable manifest ({str(e).splitlines()[0]})") from None
    if not isinstance(m, dict) or (m.get("identity") or {}).get("schema") != SCHEMA:
        raise ConfigError(f"{p}: not an evaluation manifest (no identity.schema {SCHEMA!r})")
    return m


def score_main(args: list[str]) -> list[dict]:
    """``score PROTOCOL DATASET SUBMISSION``: check, replay, write records; returns the records."""
    (protocol, dataset, folder), _, run, proto, data, _ = parse(args, 3, ())
    answered = read_meta(Path(folder))["manifest"]  # its scale and seed are the defaults
    scale = run.get("scale") or answered.get("scale")
    seed = int(run.get("seed", answered.get("seed", 0)))
    s = _setup(protocol, dataset, scale, proto, data)
    manifest = S.manifest_for(s, seed)
    runs_dir = Path(run.get("runs_dir", "runs"))
    records_dir = Path(run.get("records_dir", runs_dir / "records"))
    t0 = time.perf_counter()
    device = resolve_device(run.get("device", "auto"))
    if protocol in S.POSE_PROTOCOLS:  # a COCO results JSON, scored with pycocotools
        sub_meta, coco, sha = load_coco_results(folder, manifest)  # every check, before any work
        results = S.score_coco(s, coco)
    elif protocol == "linear":  # frozen features through the linear and kNN probes
        feats = load_feature_submission(folder, manifest)  # every check, before any work
        sub_meta, sha = feats.meta, feats.sha256
        results = S.score_features(s, feats, seed, device)
    elif protocol == "reconstruction":  # input / reconstruction pairs
        pairs = load_pairs_submission(folder, manifest)  # every check, before any work
        sub_meta, sha = pairs.meta, pairs.sha256
        results = S.score_pairs(s, pairs, seed, device)
    else:
        sub = load_submission(folder, manifest)  # every check, before any work
        sub_meta, sha = sub.meta, sub.sha256
        results = S.score_submission(s, sub, seed, device)
    wall = time.perf_counter() - t0
    meta = {k: v for k, v in sub_meta.items() if k != "manifest"}
    weights = P.entry("submitted", f"submitted ({meta['model']})", sha256=sha, folder=str(Path(folder).resolve()),
                      **{k: meta[k] for k in ("model", "paper", "url", "representation") if k in meta})
    records = []
    for res in results:
        if res.variant == "real":  # the evaluator's ground-truth row is not the submission's result
            continue
        rec = make_record(method=str(meta["model"]), dataset=s.dataset, protocol=protocol, metrics=res.metrics,
                          data=s.source, scale=s.scale, seed=seed, split=res.split, variant=res.variant,
                          n_samples=res.n_samples, wall_s=wall,
                          config={"run": {"command": "score", "scale": s.scale, "seed": seed},
                                  "method": {"submission": meta, "paper_setting": EVALUATOR_SETTING[protocol]},
                                  "dataset": s.dataset_cfg, "protocol": s.protocol_cfg},
                          extra={**res.extra, "submission": {"sha256": sha, **meta,
                                                             "manifest_sha256": manifest["identity_sha256"]}},
                          provenance=P.merge({"weights": weights}, res.provenance))
        log.info("wrote %s", write_record(rec, records_dir))
        records.append(rec)
    return records


def export_main(args: list[str]) -> str:
    """``export METHOD DATASET --manifest m.json --out DIR checkpoint=PATH``; returns DIR."""
    (method, dataset), opts, run, proto, data, meth = parse(args, 2, ("manifest", "out"))
    for o in ("manifest", "out"):
        if o not in opts:
            raise ConfigError(f"export: --{o} is required")
    if not run.get("checkpoint"):
        raise ConfigError("export: checkpoint=PATH is required (the weights that generate)")
    m = read_manifest(opts["manifest"])
    ident = m["identity"]
    if _dataset_name(dataset) != ident["dataset"]:
        raise ConfigError(f"{opts['manifest']}: a manifest of {ident['dataset']!r}, not of {dataset!r}")
    out = Path(opts["out"])
    if out.exists():
        raise ConfigError(f"--out {out}: already exists (a submission folder is written whole, never over another)")
    try:
        cls = get_method(method)
    except UnknownNameError as e:
        raise ConfigError(str(e)) from None
    mcfg = load_config("method", method, str(ident.get("scale", "paper")), meth)
    seed = int(run.get("seed", ident.get("seed", 0)))  # the probes and COCO results draw none
    with tempfile.TemporaryDirectory(prefix="motionrepro-export-") as work:  # nothing is trained: no workdir kept
        gen = cls(dict(mcfg), device=resolve_device(run.get("device", "auto")), seed=seed, workdir=Path(work))
        try:
            gen.load_checkpoint(run["checkpoint"])
        except (ValueError, FileNotFoundError, KeyError) as e:
            raise ConfigError(f"checkpoint={run['checkpoint']}: {str(e).splitlines()[0] if str(e) else e!r}") from e
        meta = {"model": method, "checkpoint": str(run["checkpoint"]), "exported_by": "./reproduce.sh export"}
        if ident["protocol"] in ARRAY_PROTOCOLS:
            export_arrays(gen, m, out, seed, meta, run, proto, data)
        else:
            write_submission(gen, m, out, seed, meta)
    return str(out)


def export_arrays(method, manifest: dict, out: Path, seed: int, meta: dict, run: dict, proto: list, data: list) -> Path:
    """Features, reconstruction pairs or COCO results of ``method`` for ``manifest`` (which must be
    the one this evaluation draws: same identity)."""
    ident = manifest["identity"]
    s = _setup(ident["protocol"], ident["dataset"], str(ident.get("scale", "paper")), proto, data)
    if S.manifest_for(s, int(ident.get("seed", seed)))["identity_sha256"] != manifest["identity_sha256"]:
        raise ConfigError("--manifest: not the manifest of this evaluation (its identity differs: regenerate it "
                          "with ./reproduce.sh manifest and the same KEY=V overrides)")
    if ident["protocol"] == "linear":
        return X.write_features(method, s.data, s.protocol_cfg, run.get("pooling", "mean"), manifest, out, meta)
    if ident["protocol"] == "reconstruction":
        return X.write_pairs(method, s.data, s.protocol_cfg, seed, manifest, out, meta)
    return X.write_coco(method, s.data, s.protocol_cfg, run.get("boxes", "det"), manifest, out, meta)


def write_submission(method, manifest: dict, out: Path, seed: int, meta: dict) -> Path:
    """Answer ``manifest`` with ``method.generate`` (calls in the manifest's order, from
    ``seed_everything(seed)`` as the runner seeds a protocol), one ``.npz`` per repetition, then
    ``submission.yaml``; written under ``OUT.part`` and renamed, so nothing half-written remains."""
    items = {it["key"]: it for it in manifest["items"]}
    proto = manifest["identity"]["protocol"]

    def write(part: Path) -> dict:
        seed_everything(seed)
        per_rep: dict[int, dict[str, np.ndarray]] = {}
        for keys in manifest["calls"]:
            its = [items[k] for k in keys]
            lengths = [it["length"] for it in its]
            if proto == "text2motion":
                x = call_generate(method, [it["caption"] for it in its], lengths, None).numpy()
            else:
                if it_starts_repetition(its[0]):  # action2motion seeds torch per repetition
                    torch.manual_seed(int(manifest["identity"]["seed"]) + its[0]["repetition"])
                with torch.inference_mode():
                    x = torch.as_tensor(method.generate([it["label"] for it in its], lengths)).float().cpu().numpy()
            for k, it, row in zip(keys, its, x):
                per_rep.setdefault(it["repetition"], {})[k] = row[:it["length"]]
            if len(per_rep) > 1:  # a repetition is complete once the next one starts
                r = min(per_rep)
                np.savez(part / f"r{r:02d}.npz", **per_rep.pop(r))
        for r, arrays in per_rep.items():
            np.savez(part / f"r{r:02d}.npz", **arrays)
        return {"representation": "features" if proto == "text2motion" else "joints"}

    return X.staged(out, write, manifest, meta)


def it_starts_repetition(item: dict) -> bool:
    """The first item of a repetition (position 0)."""
    return int(item.get("position", -1)) == 0


def main(command: str, args: list[str]) -> int:
    """Dispatch ``manifest`` / ``score`` / ``export``; a user-fixable problem: one line, exit 2."""
    if any(a in ("-h", "--help") for a in args):
        print(__doc__)
        return 0
    try:
        if command == "manifest":
            print(manifest_main(args))
        elif command == "score":
            for rec in score_main(args):
                m = {k: round(v["value"], 4) for k, v in rec["metrics"].items() if isinstance(v, dict)}
                print(f"{rec['method']} {rec['dataset']} {rec['protocol']} {rec['variant'] or ''}: {m}")
        elif command == "export":
            print(export_main(args))
        else:
            raise ConfigError(f"unknown command {command!r} (manifest, score, export)")
    except (SubmissionError, ConfigError, DatasetError, CheckpointError) as e:  # as the runner's guard
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
