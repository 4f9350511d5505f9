"""load_config: scale merge, patch, dotlist overrides, helpful errors."""

from __future__ import annotations

import pytest

from evaluators.core.config import load_config, resolve_scale


@pytest.fixture
def cfg_dir(tmp_path):
    (tmp_path / "method").mkdir()
    (tmp_path / "method" / "toy.yaml").write_text(
        "dim: 256\nlayers: 9\nopt: {lr: 1.0e-4, wd: 0.0}\nscales:\n  paper: {epochs: 6000}\n"
        "  smoke: {dim: 8, epochs: 1, opt: {lr: 1.0e-3}}\n")
    return tmp_path


def test_scale_block_merges_over_common_keys_and_is_dropped(cfg_dir):
    paper = load_config("method", "toy", "paper", config_dir=cfg_dir)
    smoke = load_config("method", "toy", "smoke", config_dir=cfg_dir)
    assert paper == {"dim": 256, "layers": 9, "opt": {"lr": 1e-4, "wd": 0.0}, "epochs": 6000, "name": "toy"}
    assert smoke == {"dim": 8, "layers": 9, "opt": {"lr": 1e-3, "wd": 0.0}, "epochs": 1, "name": "toy"}


def test_overrides_win_over_scale_and_patch(cfg_dir):
    patch = {"layers": 4, "scales": {"smoke": {"layers": 2, "dim": 16}}}
    out = load_config("method", "toy", "smoke", ["dim=32", "opt.wd=0.1", "new.key=x"], patch=patch,
                      config_dir=cfg_dir)
    assert (out["dim"], out["layers"], out["opt"], out["new"]) == (32, 2, {"lr": 1e-3, "wd": 0.1}, {"key": "x"})
    assert "scales" not in out


def test_bad_inputs_name_the_problem(cfg_dir):
    with pytest.raises(FileNotFoundError, match="available in method/: toy"):
        load_config("method", "nope", "paper", config_dir=cfg_dir)
    with pytest.raises(ValueError, match="scale must be one of"):
        load_config("method", "toy", "huge", config_dir=cfg_dir)
    with pytest.raises(ValueError, match="key=value"):
        load_config("method", "toy", "paper", ["dim"], config_dir=cfg_dir)
    with pytest.raises(ValueError, match="unknown scale"):
        resolve_scale({"scales": {"tiny": {}}}, "paper")
