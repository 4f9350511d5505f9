"""MMPose HRNet recipe parts: the per-iteration linear warm-up (against torch's LinearLR chained with
MultiStepLR) and RandomHalfBody (against its definition in mmpose common_transforms.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from evaluators.core.config import load_config
from evaluators.datasets.pose2d.transforms import (
    COCO_LOWER_BODY,
    COCO_UPPER_BODY,
    fix_aspect_ratio,
    half_body_ids,
    topdown_sample,
)
from methods.common.pose_estimation import BestCheckpoint, make_lr_scheduler
from methods.common.training import TrainState


@pytest.mark.parametrize("name", ["diffusionpose", "heatmap_baseline"])
def test_warmup_lr_curve_equals_torch_linear_lr_then_multistep(name):
    tcfg = load_config("method", name, "paper")["train"]
    assert tcfg["warmup"] == {"iters": 500, "start_factor": 0.001}
    total = 2000
    p1, p2 = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    ours_opt, ref_opt = torch.optim.SGD([p1], lr=5e-4), torch.optim.SGD([p2], lr=5e-4)
    ours = make_lr_scheduler(ours_opt, tcfg, total)
    ref = torch.optim.lr_scheduler.ChainedScheduler([
        torch.optim.lr_scheduler.LinearLR(ref_opt, start_factor=0.001, end_factor=1.0, total_iters=500),
        torch.optim.lr_scheduler.MultiStepLR(ref_opt, [int(f * total) for f in tcfg["milestones"]], gamma=0.1)])
    a, b = [], []
    for _ in range(total):
        a.append(ours_opt.param_groups[0]["lr"])
        b.append(ref_opt.param_groups[0]["lr"])
        ours_opt.step(), ref_opt.step()
        ours.step(), ref.step()
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-15)
    assert a[0] == pytest.approx(5e-7) and a[500] == pytest.approx(5e-4) and a[-1] == pytest.approx(5e-6)


def test_half_body_selection_frequencies_match_mmpose_rule():
    rng = np.random.default_rng(0)
    n = 20000
    vis = np.ones(17)
    picks = [half_body_ids(vis, COCO_UPPER_BODY, COCO_LOWER_BODY, rng) for _ in range(n)]
    up = sum(p == COCO_UPPER_BODY for p in picks) / n
    low = sum(p == COCO_LOWER_BODY for p in picks) / n
    # P(apply) = 0.3, then upper with 0.7: 0.21 / 0.09 / 0.70 (5 binomial standard deviations)
    for got, p in ((up, 0.21), (low, 0.09), (1 - up - low, 0.70)):
        assert abs(got - p) < 5 * np.sqrt(p * (1 - p) / n)
    # fewer than 9 labeled joints: never
    few = np.zeros(17)
    few[:8] = 2
    assert all(half_body_ids(few, COCO_UPPER_BODY, COCO_LOWER_BODY, rng) is None for _ in range(500))
    # lower half with < 3 labeled joints: always the (labeled) upper half when applied
    v = np.ones(17)
    v[[11, 12, 13, 14]] = 0
    v[3] = 0
    picks = [half_body_ids(v, COCO_UPPER_BODY, COCO_LOWER_BODY, rng) for _ in range(2000)]
    applied = [p for p in picks if p is not None]
    assert applied and all(p == [i for i in COCO_UPPER_BODY if i != 3] for p in applied)
    assert abs(len(applied) / 2000 - 0.3) < 5 * np.sqrt(0.21 / 2000)


def test_half_body_crop_box_is_the_joints_mean_and_padded_extent():
    rng = np.random.default_rng(1)
    kpts = np.stack([rng.uniform(40, 120, 17), rng.uniform(20, 180, 17)], 1)
    inst = {"bbox": [30, 10, 100, 180], "keypoints": kpts, "visible": np.full(17, 2.0)}
    img = np.zeros((200, 160, 3), np.uint8)
    aug = {"flip": 0.0, "scale": (1.0, 1.0), "rot": 0.0, "rot_prob": 0.0,
           "half_body": {"prob": 1.0, "upper_prioritized_prob": 1.0}}
    out = topdown_sample(img, inst, (48, 64), (12, 16), 1.0, [], rng=np.random.default_rng(0), aug=aug)
    up = kpts[COCO_UPPER_BODY]
    np.testing.assert_allclose(out["meta"]["center"], up.mean(0), rtol=1e-5)
    want = fix_aspect_ratio((up.max(0) - up.min(0)) * 1.5, 48 / 64)
    np.testing.assert_allclose(out["meta"]["scale"], want, rtol=1e-5)
    off = topdown_sample(img, inst, (48, 64), (12, 16), 1.0, [], rng=np.random.default_rng(0),
                         aug={**aug, "half_body": None})
    np.testing.assert_allclose(off["meta"]["center"], [80, 100])  # the person box centre


class _Scripted:
    """Stands in for a pose method (a tiny net) and its caller's scorer (a scripted metric per call)."""

    registry_name = "scripted"

    def __init__(self, values):
        self.net = torch.nn.Linear(2, 2)
        self.values, self.calls = list(values), []

    def predict(self, images, boxes):
        raise AssertionError("the scripted scorer never predicts")

    def score(self, predict):
        assert predict == self.predict  # the selector scores the method's own predict
        self.calls.append({k: v.clone() for k, v in self.net.state_dict().items()})
        return "coco/AP", self.values[len(self.calls) - 1]


def test_best_checkpoint_is_the_argmax_of_val_ap_and_survives_resume(tmp_path):
    values = [10.0, 30.0, 25.0, 30.0, 20.0]  # evaluated at steps 4, 8, 12, 16, 20 (val_interval 2 epochs x 2)
    m = _Scripted(values)
    data = SimpleNamespace(eval_split="val", splits={"train": [], "val": []})
    tcfg = {**load_config("method", "diffusionpose", "paper")["train"], "save_best": "coco/AP", "val_interval": 2,
            "val_interval_steps": None}  # the YAML train block with a 2-epoch interval
    sel = BestCheckpoint.from_config(m, data, tcfg, score=m.score, steps_per_epoch=2, total_steps=20,
                                     ckpt_dir=tmp_path)
    logged = []
    for step in range(1, 21):
        with torch.no_grad():
            m.net.weight.add_(1.0)  # weights differ at every step
        if step == 10:  # interrupted: a new selector (as after a resume) must know the best so far
            sel = BestCheckpoint.from_config(m, data, tcfg, score=m.score, steps_per_epoch=2, total_steps=20,
                                             ckpt_dir=tmp_path)
        state = TrainState(step=step)
        sel.on_step(state)
        if state.val:  # the training loop logs these as val/<metric> curves at this step
            logged.append((step, state.val))
    assert len(m.calls) == 5
    assert logged == [(4 * (i + 1), {"coco/AP": v}) for i, v in enumerate(values)]
    best = int(np.argmax(values))  # first maximum (rule 'greater': a tie keeps the earlier one)
    info = sel.restore_best()
    assert (info["step"], info["epoch"], info["value"], info["metric"]) == (8, 4.0, 30.0, "coco/AP")
    assert torch.equal(m.net.weight, m.calls[best]["weight"])
    assert "epoch 4.00" in info["label"]
    off = BestCheckpoint.from_config(m, data, {"save_best": None}, score=None, steps_per_epoch=2, total_steps=20,
                                     ckpt_dir=None)
    assert off is None and m.checkpoint_selection["id"] == "last"
    with pytest.raises(ValueError, match="validation scorer"):  # save_best without a scorer: refused
        BestCheckpoint.from_config(m, data, tcfg, score=None, steps_per_epoch=2, total_steps=20, ckpt_dir=None)


@pytest.mark.parametrize("name", ["diffusionpose", "heatmap_baseline"])
def test_paper_recipe_selects_best_coco_ap_every_10_epochs(name):
    tcfg = load_config("method", name, "paper")["train"]
    assert (tcfg["save_best"], tcfg["val_interval"]) == ("coco/AP", 10)
