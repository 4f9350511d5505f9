"""Kill/resume for every method: a ``fit`` stopped at a checkpoint and re-run ends bit-identical.

The stop is the training loop's ``$MOTIONREPRO_STOP_AFTER`` hook (the checkpoint of that step is
written, then :class:`TrainingInterrupted` ends ``fit`` as a kill would, without the seconds a
real SIGKILL test costs; ``tests/foundation/test_training.py`` kills a real process). Multi-stage
methods are stopped inside their second stage, so the re-run also reloads a finished stage and
its RNG/dataset-generator state. Each run is a few optimizer steps on the bundled synthetic data.
"""

from __future__ import annotations

import pytest
import torch

from evaluators.datasets import load_dataset
from methods import get_method
from methods.base import RepresentationLearner
from methods.common.config import load_config
from methods.common.training import STOP_ENV, TrainingInterrupted, seed_everything

T2M_TINY = ["render.n=0", "tokenizer.steps=3", "mask_transformer.steps=3", "residual_transformer.steps=3",
            "tokenizer.width=32", "tokenizer.code_dim=16", "tokenizer.nb_code=32",
            "tokenizer.batch_size=8", "mask_transformer.batch_size=8", "residual_transformer.batch_size=8"]
POSE_TINY = ["train.total_steps=4", "train.batch_size=4", "flip_test=false"]
METHODS = {  # method: (dataset config, method overrides at smoke scale, where to stop)
    "mld": ("synth_t2m", ["render.n=0", "vae.steps=3", "denoiser.steps=3", "vae.batch_size=8",
                          "denoiser.batch_size=8", "vae.num_layers=1", "denoiser.num_layers=1"], "mld-denoiser:2"),
    "momask": ("synth_t2m", T2M_TINY, "mask_transformer:2"),
    "hgm3": ("synth_t2m", T2M_TINY, "mask_transformer:2"),
    "macdiff": ("synth_ntu", ["pretrain.total_steps=4", "pretrain.batch_size=8"], "macdiff-pretrain:2"),
    "diffusionpose": ("synth_coco", POSE_TINY, "2"),
    "heatmap_baseline": ("synth_coco", POSE_TINY, "2"),
}


def test_every_registered_training_method_is_covered():
    from methods import list_methods

    trainable = {m for m in list_methods() if not getattr(get_method(m), "testing_only", False)}
    assert trainable <= set(METHODS), trainable - set(METHODS)


@pytest.fixture(scope="module")
def datasets():
    cache: dict = {}

    def get(name):
        if name not in cache:
            small = ["n_train=24", "n_val=4", "n_test=4"] if name == "synth_t2m" else None  # fewer captions to parse
            cache[name] = load_dataset(load_config("dataset", name, "smoke", small))
        return cache[name]
    return get


def _fit(name, overrides, data, workdir):
    seed_everything(0)  # as the runner does before building the method (initial weights come from it)
    m = get_method(name)(load_config("method", name, "smoke", overrides), seed=0, workdir=workdir)
    (m.pretrain if isinstance(m, RepresentationLearner) else m.fit)(data)
    return {c: {k: v.clone() for k, v in mod.state_dict().items()} for c, mod in m.components().items()}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_interrupted_fit_resumes_bit_identical(name, datasets, tmp_path, monkeypatch):
    ds_name, overrides, stop = METHODS[name]
    data = datasets(ds_name)
    reference = _fit(name, overrides, data, tmp_path / "uninterrupted")
    monkeypatch.setenv(STOP_ENV, stop)
    with pytest.raises(TrainingInterrupted):
        _fit(name, overrides, data, tmp_path / "killed")
    monkeypatch.delenv(STOP_ENV)
    resumed = _fit(name, overrides, data, tmp_path / "killed")
    assert resumed.keys() == reference.keys()
    differ = [f"{c}.{k}" for c in reference for k in reference[c] if not torch.equal(reference[c][k], resumed[c][k])]
    assert not differ, f"{len(differ)} tensors differ, e.g. {differ[:5]}"
