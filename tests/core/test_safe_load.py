"""Loading never runs code from a file: checkpoints (weights_only + allow-list) and dataset pickles.

Each authors' layout is written here the way their code writes it (a dict torch-saved with the
objects their training scripts put in it), then read back through the suite's loader; crafted
files whose ``__reduce__`` would create a marker file are refused and the marker never appears.
"""

from __future__ import annotations

import argparse
import collections
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from evaluators.core.safe_load import CheckpointError, load_checkpoint_file, load_data_pickle
from evaluators.datasets import DatasetError


class _Evil:
    """Unpickling calls ``Path.write_text(marker, "pwned")``: the file appears iff code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def test_momask_tar_layout_with_namespace_and_counter_loads(tmp_path):
    # momask-codes models/vq/vq_trainer.py save(): state dicts, epoch, iteration; the option parser's
    # argparse.Namespace is saved by the option code; MultiStepLR keeps milestones in a Counter
    sched = torch.optim.lr_scheduler.MultiStepLR(torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))]), [5, 9])
    obj = {"vq_model": {"quantizer.layers.0.codebook": torch.randn(4, 2)}, "scheduler": sched.state_dict(),
           "ep": 3, "total_it": np.int64(120), "opt": argparse.Namespace(dataset_name="t2m", lr=2e-4)}
    torch.save(obj, tmp_path / "net_best_fid.tar")
    back = load_checkpoint_file(tmp_path / "net_best_fid.tar")
    assert isinstance(back["opt"], argparse.Namespace) and back["opt"].dataset_name == "t2m"
    assert isinstance(back["scheduler"]["milestones"], collections.Counter)
    assert torch.equal(back["vq_model"]["quantizer.layers.0.codebook"], obj["vq_model"]["quantizer.layers.0.codebook"])


def test_macdiff_layout_with_args_and_numpy_scalars_loads(tmp_path):
    obj = {"model": {"joints_embed.weight": torch.randn(3, 3)}, "epoch": 400,
           "args": argparse.Namespace(mask_ratio=0.9, lr=np.float64(5e-4)), "best": np.float32(0.5),
           "order": np.arange(4)}
    torch.save(obj, tmp_path / "checkpoint-last.pth")
    back = load_checkpoint_file(tmp_path / "checkpoint-last.pth")
    assert back["args"].lr == np.float64(5e-4) and back["order"].tolist() == [0, 1, 2, 3]


def test_mld_lightning_ckpt_with_hyperparameters_loads_without_lightning(tmp_path, monkeypatch):
    # a Lightning checkpoint pickles hyper_parameters as pytorch_lightning's AttributeDict holding the
    # omegaconf DictConfig that MLD's save_hyperparameters() received; fake the module to write one
    mod = types.ModuleType("pytorch_lightning.utilities.parsing")

    class AttributeDict(dict):
        pass

    AttributeDict.__module__, AttributeDict.__qualname__ = mod.__name__, "AttributeDict"
    mod.AttributeDict = AttributeDict
    for name in ("pytorch_lightning", "pytorch_lightning.utilities", "pytorch_lightning.utilities.parsing"):
        monkeypatch.setitem(sys.modules, name, mod if name.endswith("parsing") else types.ModuleType(name))
    cfg = OmegaConf.create({"model": {"latent_dim": [1, 256]}, "TRAIN": {"lr": 1e-4, "name": "mld"}})
    ckpt = {"epoch": 2999, "global_step": 10, "pytorch-lightning_version": "1.7.7",
            "state_dict": {"denoiser.x": torch.ones(2), "vae.y": torch.zeros(1)},
            "hyper_parameters": AttributeDict(cfg=cfg), "loops": {"fit_loop": {"state_dict": {}}}}
    torch.save(ckpt, tmp_path / "1222_mld_humanml3d_FID041.ckpt")
    for name in ("pytorch_lightning", "pytorch_lightning.utilities", "pytorch_lightning.utilities.parsing"):
        monkeypatch.delitem(sys.modules, name)  # Lightning is not installed when we load
    back = load_checkpoint_file(tmp_path / "1222_mld_humanml3d_FID041.ckpt")
    assert back["hyper_parameters"]["cfg"].model.latent_dim == [1, 256]
    assert torch.equal(back["state_dict"]["denoiser.x"], torch.ones(2))


def test_crafted_checkpoint_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "x": _Evil(marker)}, path)
    with pytest.raises(CheckpointError, match="refused to load global") as e:
        load_checkpoint_file(path)
    assert str(path) in str(e.value) and not marker.exists()
    # the converters take the same road
    from methods.mld.convert import load_any

    with pytest.raises(CheckpointError, match="evil.pt"):
        load_any(path)
    assert not marker.exists()


def test_crafted_dataset_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "humanact12poses.pkl"
    path.write_bytes(pickle.dumps({"joints3D": [np.zeros((3, 24, 3))], "y": [0], "x": _Evil(marker)}))
    with pytest.raises(DatasetError, match="refused to unpickle pathlib") as e:
        load_data_pickle(path)
    assert str(path) in str(e.value) and not marker.exists()
    from evaluators.datasets.motion.action import read_humanact12

    with pytest.raises(DatasetError, match="refused"):
        read_humanact12(path)
    assert not marker.exists()


def test_dataset_pickle_with_arrays_and_containers_loads(tmp_path):
    data = {"joints3D": [np.random.rand(5, 24, 3).astype(np.float32)], "y": [3], "names": ("a", 1.5, None, True)}
    for proto in (2, 4, 5):
        p = tmp_path / f"p{proto}.pkl"
        p.write_bytes(pickle.dumps(data, protocol=proto))
        back = load_data_pickle(p)
        assert np.array_equal(back["joints3D"][0], data["joints3D"][0]) and back["names"] == data["names"]


def test_trust_pickles_is_an_explicit_opt_out(tmp_path):
    p = tmp_path / "od.pkl"
    p.write_bytes(pickle.dumps(collections.OrderedDict(a=1)))
    with pytest.raises(DatasetError, match="collections.OrderedDict"):
        load_data_pickle(p)
    assert load_data_pickle(p, trust=True) == {"a": 1}
