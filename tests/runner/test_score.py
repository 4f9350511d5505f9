"""Scoring models not run here: manifests, round trips through ``export`` / ``score``, the Python API.

Checked against behaviour, not against the code's own arithmetic: a submission exported from MLD
and scored from files must give the numbers of the in-process protocol run with the same seed
(bit for bit on the CPU); the README example must run as printed. What a submission folder must
hold and how a bad one is refused (exit 2, one line, nothing written) is in
``test_score_submissions.py``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluators import score as S
from evaluators.core.config import load_config
from evaluators.records import normalise_metric
from evaluators.runner import score as R

REPO = Path(__file__).resolve().parents[2]
# small enough for CI: 2 repetitions of 3 batches, MultiModality 2 prompts x 3
PROTO = ["repetitions=2", "mm.num_samples=2", "mm.num_repeats=3", "mm.num_times=2"]
TINY_MLD = ["vae.steps=20", "denoiser.steps=20", "render.n=0"]


TOKEN_TINY = ["tokenizer.steps=10", "mask_transformer.steps=10", "residual_transformer.steps=10", "render.n=0"]
# the round trip needs weights, not quality: a few optimizer steps per stage
TINY = {"mld": TINY_MLD, "momask": TOKEN_TINY, "hgm3": TOKEN_TINY}
_CHECKPOINTS: dict[str, Path] = {}


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    """``name -> checkpoint``: each generator trained once per session at (reduced) smoke scale on synth_t2m."""
    from evaluators.datasets import load_dataset
    from methods import get_method

    def get(name: str) -> Path:
        if name not in _CHECKPOINTS:
            torch.set_num_threads(1)
            data = load_dataset(load_config("dataset", "synth_t2m", "smoke"))
            work = tmp_path_factory.mktemp(name)
            m = get_method(name)(load_config("method", name, "smoke", TINY[name]), seed=0, workdir=work)
            m.fit(data)
            m.save_checkpoint(work / "method.pt")
            _CHECKPOINTS[name] = work / "method.pt"
        return _CHECKPOINTS[name]
    return get


def _load(name: str, ckpt: Path):
    from methods import get_method

    m = get_method(name)(load_config("method", name, "smoke", TINY[name]), seed=0)
    m.load_checkpoint(ckpt)
    return m


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_manifest_is_the_protocols_draw():
    """The manifest lists what the protocol asks for: every generate call of the run, in order."""
    s = S.setup("text2motion", "synth_t2m", "smoke", PROTO)
    m = S.manifest_for(s, seed=5)
    asked = []

    class Spy:
        def generate(self, captions, lengths, steps=None):
            asked.append((list(captions), [int(n) for n in lengths]))
            return torch.zeros(len(lengths), max(lengths), 263)

    S.run_protocol(s, Spy(), seed=5)
    items = {it["key"]: it for it in m["items"]}
    listed = [([items[k]["caption"] for k in call], [items[k]["length"] for k in call]) for call in m["calls"]]
    assert listed == asked
    assert m["identity"]["split_sha256_of"] == "file" and m["identity"]["seed"] == 5


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
@pytest.mark.parametrize("name", ["mld", "momask", "hgm3"])
def test_round_trip_equals_in_process(name, checkpoints, tmp_path):
    """export (fixed seed) -> score gives exactly the in-process protocol's numbers (CPU, bit for bit)."""
    seed, ckpt = 3, checkpoints(name)
    proto = [*PROTO, "debug_checks.residual_codes=warn"]  # a 10-step tokenizer may use one code per layer
    s = S.setup("text2motion", "synth_t2m", "smoke", proto)
    in_process = {r.variant: r.metrics for r in S.run_protocol(s, _load(name, ckpt), seed)}

    man = tmp_path / "m.json"
    R.manifest_main(["text2motion", "synth_t2m", "--out", str(man), "scale=smoke", f"seed={seed}", *proto])
    sub = tmp_path / "sub"
    R.export_main([name, "synth_t2m", "--manifest", str(man), "--out", str(sub), f"checkpoint={ckpt}",
                   *[f"method_cfg.{o}" for o in TINY[name]]])
    assert sorted(p.name for p in sub.iterdir()) == ["r00.npz", "r01.npz", "submission.yaml"]
    runs = tmp_path / "runs"
    records = R.score_main(["text2motion", "synth_t2m", str(sub), f"runs_dir={runs}", *proto])
    assert [r["variant"] for r in records] == [""]
    rec = records[0]
    want = {k: normalise_metric(k, v) for k, v in in_process[""].items()}
    assert rec["metrics"] == want  # bit for bit
    assert rec["provenance"]["weights"]["id"] == "submitted"
    assert rec["provenance"]["weights"]["model"] == name
    assert len(list((runs / "records").glob("*.json"))) == 1


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_action_manifest_is_the_protocols_draw():
    """action2motion: the manifest's calls (label, length) are the protocol's, in order."""
    s = S.setup("action2motion", "synth_action", "smoke", ["repetitions=2"])
    m = S.manifest_for(s, seed=1)
    asked = []

    class Spy:
        def generate(self, labels, lengths, steps=None):
            asked.append(([int(v) for v in labels], [int(n) for n in lengths]))
            return torch.randn(len(lengths), max(lengths), *m["representation"]["joints"])

    S.run_protocol(s, Spy(), seed=1)
    items = {it["key"]: it for it in m["items"]}
    assert [([items[k]["label"] for k in c], [items[k]["length"] for k in c]) for c in m["calls"]] == asked
    assert m["identity"]["dataset"] == "synth_action" and m["identity"]["split_sha256_of"] == "content"


def _readme_example() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Score your own model", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "README: no python block under 'Score your own model'"
    return blocks[0]


def test_readme_example_runs_verbatim():
    code = _readme_example()
    assert len(code.strip().splitlines()) <= 12
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own example
    metrics = scope["metrics"]
    assert {"fid", "r_precision_top1", "diversity", "multimodality"} <= set(metrics)
    assert all(np.isfinite(v["value"]) for v in metrics.values())


def test_api_refuses_a_bad_generator():
    """A callable returning the wrong width stops with one message naming the call."""
    with pytest.raises(S.SubmissionError, match="generate call 1: returned shape"):
        S.text2motion(lambda caps, lens: np.zeros((len(caps), max(lens), 7)), "synth_t2m", overrides=PROTO)


def test_manifest_json_round_trips(tmp_path):
    out = R.manifest_main(["text2motion", "synth-t2m", "--out", str(tmp_path / "m.json"), "scale=smoke", *PROTO])
    m = json.loads(Path(out).read_text())
    assert m["identity"]["schema_version"] == 1 and m["n_items"] == len(m["items"])
    shutil.rmtree(tmp_path)


def test_action_api_scores_a_callable():
    """evaluators.score.action2motion: any callable of (labels, lengths) -> joints, same protocol."""
    rng = np.random.default_rng(0)
    metrics = S.action2motion(lambda labels, lens: rng.normal(size=(len(labels), max(lens), 24, 3)),
                              "synth_action", repetitions=2)
    assert {"accuracy", "fid_train", "diversity", "multimodality"} <= set(metrics)
    assert 0.0 <= metrics["accuracy"]["value"] <= 1.0


MLD_ACTION = ["condition=action", "task=action2motion", "max_motion_len=null", *TINY_MLD]


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_mld_action_round_trip_equals_in_process(tmp_path):
    """action2motion: an MLD export (fixed seed) scored from files gives exactly the in-process
    protocol's numbers (CPU, bit for bit): the recogniser's random GRU state comes from its own
    seeded streams, so replaying files (no generator draws) meets the same evaluator noise."""
    from evaluators.datasets import load_dataset
    from methods import get_method

    torch.set_num_threads(1)
    seed = 2
    data = load_dataset(load_config("dataset", "synth_action", "smoke"))
    m = get_method("mld")(load_config("method", "mld", "smoke", MLD_ACTION), seed=0, workdir=tmp_path / "w")
    m.fit(data)
    m.save_checkpoint(tmp_path / "a.pt")
    s = S.setup("action2motion", "synth_action", "smoke", ["repetitions=2"])
    gen = get_method("mld")(load_config("method", "mld", "smoke", MLD_ACTION), seed=0)
    gen.load_checkpoint(tmp_path / "a.pt")
    in_process = {r.variant: r.metrics for r in S.run_protocol(s, gen, seed)}

    man = tmp_path / "m.json"
    R.manifest_main(["action2motion", "synth-action", "--out", str(man), "scale=smoke", "repetitions=2", f"seed={seed}"])
    sub = tmp_path / "sub"
    R.export_main(["mld", "synth_action", "--manifest", str(man), "--out", str(sub), f"checkpoint={tmp_path / 'a.pt'}",
                   *[f"method_cfg.{o}" for o in MLD_ACTION]])
    records = R.score_main(["action2motion", "synth_action", str(sub), f"runs_dir={tmp_path / 'runs'}", "repetitions=2"])
    rec = records[0]
    assert rec["provenance"]["weights"]["representation"] == "joints"
    assert rec["metrics"] == {k: normalise_metric(k, v) for k, v in in_process[""].items()}  # bit for bit


def test_subcommand_help_and_usage_errors(capsys):
    assert R.main("export", ["--help"]) == 0 and "--manifest m.json" in capsys.readouterr().out
    assert R.main("manifest", ["text2motion", "synth_t2m"]) == 2  # no --out
    assert capsys.readouterr().err.strip() == "error: manifest: --out FILE is required"
    assert R.main("score", ["text2motion"]) == 2
    assert "expected 3 arguments" in capsys.readouterr().err


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_linear_probe_api_scores_a_callable_encoder():
    """evaluators.score.linear: the suite's linear probe on any frozen encoder. A feature that carries
    the skeleton's motion beats one that is pure noise (independent of the probe's code)."""
    torch.manual_seed(0)

    def motion_energy(x, pooling):  # per joint and axis: mean speed over the window (a real cue)
        if pooling != "mean":
            raise ValueError(pooling)
        return (x[:, :, 1:] - x[:, :, :-1]).abs().mean(dim=(2, 4)).flatten(1)

    def noise(x, pooling):
        if pooling != "mean":
            raise ValueError(pooling)
        return torch.randn(x.shape[0], 75)

    kw = dict(dataset="synth_ntu", features="frozen_once", poolings=["mean"], overrides=["epochs=10"])
    good = S.linear(motion_energy, **kw)["pool=mean,features=frozen_once"]["top1"]
    bad = S.linear(noise, **kw)["pool=mean,features=frozen_once"]["top1"]
    assert 0.0 <= bad < good <= 100.0  # percent


def test_reconstruction_api_identity_is_zero_error():
    """evaluators.score.reconstruction: the identity reconstructs with zero joint error (closed
    form), added noise does not; a wrong shape is refused naming the call."""
    exact = S.reconstruction(lambda x: x.clone(), "synth_t2m", overrides=["fid.enabled=false"])
    assert exact["mpjpe_mm"] == pytest.approx(0.0, abs=1e-3) and exact["pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-3)
    noisy = S.reconstruction(lambda x: x + 0.05 * torch.randn_like(x), "synth_t2m", overrides=["fid.enabled=false"])
    assert noisy["mpjpe_mm"] > 1.0
    with pytest.raises(S.SubmissionError, match="reconstruct call 1: returned shape"):
        S.reconstruction(lambda x: x[:, :-1], "synth_t2m", overrides=["fid.enabled=false"])


def test_manifest_of_a_real_dataset_not_on_disk_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HUMANML3D_ROOT", raising=False)
    rc = R.main("manifest", ["text2motion", "humanml3d", "--out", str(tmp_path / "m.json"), "dataset.root=null"])
    assert rc == 2 and capsys.readouterr().err.startswith("error: ")
    assert not (tmp_path / "m.json").exists()
