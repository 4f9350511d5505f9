"""Each method's smoke run learns something measurable: thresholds on the published demo records.

The records under ``leaderboards/results`` are what the demo writes at this commit (the
published-records check reruns the cheapest chain and compares them field by field), so these
thresholds make the demo an end-to-end check of learning, not only of running to completion.

Every threshold is against chance or against what an untrained model gives:

- text-to-motion R-Precision top 1 ranks the true caption among 32 (the protocol's batch): an
  untrained generator's motions match no caption, so it scores 1/32; the lower end of the
  record's 95 % interval over repetitions must clear it (a one-sided test at 97.5 %);
- action recognition top 1 on synth_ntu's 12 classes: chance is 100/12 = 8.3 %;
- action-to-motion: the recogniser's top-1 accuracy on the generated motions w.r.t. the actions
  they were asked for, on synth_action's 12 classes: an untrained generator's motions carry no
  action, so they score chance, 1/12; the lower end of the interval must clear twice that (ours);
- reconstruction MPJPE: an untrained auto-encoder returns noise metres away; 100 mm is ours;
- pose estimation on synth_coco's smoke set (``style: markers``, one figure per image, 60 val
  persons): an untrained network, measured on this set with the smoke config, scores COCO AP
  0.00 % and PCK@0.2 3.2 % (heatmap baseline) / 9.0 % (DiffusionPose); the trained smoke runs
  must reach PCK@0.2 > 50 % and AP > 0.5 %. AP stays low at this budget: OKS tolerates ~3 image px
  on the face keypoints, less than the 8 px of one heatmap pixel of the 48x64 smoke input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from leaderboards.make_tables import LB_DIR, latest, load_results

R_PRECISION_CHANCE = 1 / 32  # evaluators/protocols/text2motion.py: 32 captions per ranking (official batch)
NTU_SYNTH_CHANCE = 100 / 12  # configs/dataset/synth_ntu.yaml: num_actions 12
ACTION_SYNTH_CHANCE = 1 / 12  # configs/dataset/synth_action.yaml: num_classes 12 (accuracy is a fraction)
CONFIG_METHODS = Path(__file__).resolve().parents[2] / "configs" / "method"
# an untrained network's PCK@0.2 (percent, GT boxes, flip test) on synth_coco's smoke val set, measured
# with the smoke configs (seed 0); its COCO AP there is 0.00 %
UNTRAINED_PCK = {"heatmap_baseline": 3.2, "diffusionpose": 9.0}
POSE_PCK_BOUND = 50.0  # ours
POSE_AP_BOUND = 0.5  # ours: percent


@dataclass(frozen=True)
class Threshold:
    method: str
    protocol: str
    variant: str
    metric: str
    bound: float
    above: bool  # the value (minus its ci95 when ``one_sided``) must be above ``bound``; else below
    why: str
    one_sided: bool = False


THRESHOLDS = [
    *[Threshold(m, "text2motion", "", "r_precision_top1", R_PRECISION_CHANCE, True,
                "R@1 beats an untrained generator (1/32) by more than its 95 % interval", one_sided=True)
      for m in ("mld", "momask", "hgm3")],
    *[Threshold(m, "reconstruction", "", "mpjpe_mm", 100.0, False, "ours: the auto-encoder reconstructs within 10 cm")
      for m in ("mld", "momask", "hgm3")],
    Threshold("mld", "action2motion", "", "accuracy", 2 * ACTION_SYNTH_CHANCE, True,
              "ours: the action chain's motions are recognised as their action at twice chance (1/12), beyond "
              "their 95 % interval", one_sided=True),
    Threshold("macdiff", "linear", "pool=mean,features=per_epoch_augmented", "top1", 3 * NTU_SYNTH_CHANCE, True,
              "a linear probe on the pretrained features reaches 3x chance (12 classes)"),
    Threshold("macdiff", "finetune", "", "top1", 3 * NTU_SYNTH_CHANCE, True, "fine-tuning reaches 3x chance"),
    *[Threshold(m, "coco_ap", "gt_boxes", "pck_0.2", POSE_PCK_BOUND, True,
                f"ours: PCK@0.2 far above an untrained network's {UNTRAINED_PCK[m]} % (measured)") for m in UNTRAINED_PCK],
    *[Threshold(m, "coco_ap", "gt_boxes", "ap", POSE_AP_BOUND, True,
                "ours: COCO AP above an untrained network's 0.00 % (measured)") for m in UNTRAINED_PCK],
]


@pytest.fixture(scope="module")
def smoke_records() -> dict[tuple[str, str, str], dict]:
    recs = [r for r in latest(load_results([LB_DIR / "results"])) if r["scale"] == "smoke"]
    return {(r["method"], r["protocol"], r["variant"]): r for r in recs}


def test_every_demo_method_has_a_threshold():
    demo = sorted(p.stem for p in CONFIG_METHODS.glob("*.yaml")
                  if (yaml.safe_load(p.read_text(encoding="utf-8")) or {}).get("demo_experiment"))
    assert demo and sorted({t.method for t in THRESHOLDS}) == demo


@pytest.mark.parametrize("t", [pytest.param(t, id=f"{t.method}-{t.protocol}-{t.metric}") for t in THRESHOLDS])
def test_smoke_run_learns(smoke_records, t: Threshold):
    rec = smoke_records.get((t.method, t.protocol, t.variant))
    assert rec is not None, f"no published smoke record {t.method} {t.protocol} {t.variant!r}"
    m = rec["metrics"][t.metric]
    value = m["value"]
    if t.one_sided:
        assert m.get("ci95") is not None, f"{t.method} {t.metric}: a one-sided test needs the record's interval"
        value = value - m["ci95"] if t.above else value + m["ci95"]
    ok = value > t.bound if t.above else value < t.bound
    assert ok, (f"{t.method} {t.protocol} {t.metric} = {m['value']:.4g} (tested {value:.4g}) is not "
                f"{'above' if t.above else 'below'} {t.bound:.4g}: {t.why}")
