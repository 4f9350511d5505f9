"""The gallery exporter on fabricated run folders: the pose overlays and the training curves it
publishes, the records it links, and the curve thinning (no trained method needed)."""

from __future__ import annotations

import csv
import json

import numpy as np
from PIL import Image

from evaluators.runner.gallery import POSE_PX, export_gallery
from leaderboards.curves import read_published, thin


def _record(method: str, protocol: str, variant: str, workdir: str) -> dict:
    return {"method": method, "dataset": "synth_coco", "protocol": protocol, "variant": variant, "seed": 0,
            "started": "2026-12-06T03:05:29Z", "git": {"commit": "abc123"},
            "provenance": {"weights": {"workdir": workdir}}, "config": {}}


def _scalars(path, steps: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["step", "tag", "value"])
        for s in range(1, steps + 1):
            w.writerow([s, "train/loss", 1.0 / s])
            w.writerow([s, "train/lr", 1e-3])  # not a loss: not published
        w.writerow([steps, "val/ap", 0.5])


def test_thin_keeps_the_ends_and_spaces_the_rest_evenly():
    rows = [(s, "train/loss", float(s)) for s in range(1, 1001)]
    steps = [r[0] for r in thin(rows, 11)]
    assert len(steps) == 11 and steps[0] == 1 and steps[-1] == 1000
    gaps = np.diff(steps)
    assert gaps.min() >= 99 and gaps.max() <= 101  # 999 steps in 10 gaps: 99.9 each, rounded
    assert thin(rows[:5], 11) == rows[:5]


def test_pose_overlays_and_curves_are_published_with_their_record(tmp_path):
    run = tmp_path / "runs" / "work" / "pose" / "run0"
    img = (np.random.default_rng(0).random((600, 400, 3)) * 255).astype(np.uint8)
    (run / "overlays" / "synth_coco").mkdir(parents=True)
    for i in range(4):
        Image.fromarray(img).save(run / "overlays" / "synth_coco" / f"00000{i}_pred.png")
    _scalars(run / "pose_train" / "scalars.csv", 500)
    rec = _record("diffusionpose", "coco_ap", "gt_boxes", "runs/work/pose/run0")
    other = _record("diffusionpose", "coco_ap", "det_boxes", "runs/work/pose/run0")
    out = tmp_path / "lb"
    manifest = json.loads(export_gallery([rec, other], out, root=tmp_path, n=3).read_text(encoding="utf-8"))
    assert manifest["captions"] == []  # no text-to-motion record: no caption rows
    (pose,) = manifest["pose"]
    assert pose["record"] == "diffusionpose_synth_coco_coco_ap_gt_boxes_20261206T030529Z_s0.json"
    assert pose["commit"] == "abc123" and len(pose["images"]) == 3
    assert (pose["dataset"], pose["protocol"], pose["variant"]) == ("synth_coco", "coco_ap", "gt_boxes")
    for rel in pose["images"]:
        w, h = Image.open(out / rel).size
        assert max(w, h) == POSE_PX and (w, h) == (round(POSE_PX * 400 / 600), POSE_PX)
    assert manifest["curves"] == {"diffusionpose": "curves/diffusionpose.png"}
    published = read_published(out / "curves" / "diffusionpose.csv")
    assert set(published["pose_train"]) == {"train/loss", "val/ap"}
    steps, values = published["pose_train"]["train/loss"]
    assert steps[0] == 1 and steps[-1] == 500 and len(steps) <= 150
    assert values == [float(f"{1.0 / s:.6g}") for s in steps]
    assert (out / "curves" / "diffusionpose.png").read_bytes()[:4] == b"\x89PNG"


def test_a_second_export_leaves_no_stale_cell(tmp_path):
    out = tmp_path / "lb"
    (out / "gallery").mkdir(parents=True)
    (out / "gallery" / "gone_0.gif").write_bytes(b"GIF89a")
    export_gallery([], out, root=tmp_path)
    assert not (out / "gallery" / "gone_0.gif").exists()
    assert json.loads((out / "gallery" / "gallery.json").read_text()) == {"actions": [], "captions": [], "curves": {}, "pose": []}


class _ActionStub:
    """Stands in for a trained action-to-motion generator: remembers what it was asked and returns
    a small random figure of 24 joints per frame (the renderer needs only joint positions)."""

    def __init__(self):
        self.asked: list[tuple[list[int], list[int]]] = []

    def generate(self, labels, lengths):
        self.asked.append((list(labels), list(lengths)))
        rng = np.random.default_rng(0)
        return rng.normal(0.0, 0.3, (len(labels), max(lengths), 24, 3)).astype(np.float32)


def test_action_rows_show_each_generator_beside_the_ground_truth_of_the_same_actions(tmp_path, monkeypatch):
    from evaluators.core.config import load_config
    from evaluators.datasets import load_dataset
    from evaluators.runner import gallery as G

    dcfg = load_config("dataset", "synth_action", "smoke")
    data = load_dataset(dcfg)
    # independent of the exporter: the first clip of each class in the test split, read in order
    first: dict[int, int] = {}
    for s in data.split("test"):
        first.setdefault(int(s.label), len(s.joints))
    want = sorted(first)[:3]
    work = tmp_path / "runs" / "work" / "mld" / "act"
    work.mkdir(parents=True)
    (work / "method.pt").write_bytes(b"")
    rec = {**_record("mld", "action2motion", "", "runs/work/mld/act"), "dataset": "synth_action", "split": "test",
           "config": {"dataset": dcfg}}
    real = {**rec, "variant": "real"}  # the real row is no generator: never a column
    stub = _ActionStub()
    monkeypatch.setattr(G, "_load_method", lambda r, wd: stub)
    out = tmp_path / "lb"
    manifest = json.loads(G.export_gallery([rec, real], out, root=tmp_path, n=3, max_frames=48).read_text())
    assert manifest["captions"] == [] and manifest["pose"] == []
    rows = manifest["actions"]
    assert [r["action"] for r in rows] == [data.class_names[k] for k in want]
    lengths = [min(first[k], 96) for k in want]  # at most 2 * max_frames frames
    assert stub.asked == [(want, lengths)] and [r["frames"] for r in rows] == lengths
    for r, n_frames in zip(rows, lengths):
        (cell,) = r["samples"]
        assert cell["method"] == "mld" and cell["variant"] == "" and cell["protocol"] == "action2motion"
        assert cell["record"] == "mld_synth_action_action2motion_20261206T030529Z_s0.json"
        for gif in (r["ground_truth"], cell["gif"]):
            im = Image.open(out / gif)
            assert im.format == "GIF" and im.n_frames == -(-min(n_frames, 48) // 2)  # every second frame


def test_action_clips_stand_on_the_renderers_floor_without_mirroring():
    from evaluators.runner.gallery import _standing

    # root at the origin, head 0.6 m below it (camera frame: y down), a foot 0.9 m above it
    cam = np.array([[[0.0, 0.0, 0.0], [0.0, -0.6, 0.0], [0.3, 0.9, 0.0], [0.0, 0.0, 0.2]]])
    up = _standing(cam, "-y")
    assert up[0, :, 1].min() == 0.0 and up[0, 2, 1] == 0.0 and np.isclose(up[0, 1, 1], 1.5)  # foot on the floor
    # a rotation keeps handedness: the triple product of three limbs keeps its sign
    assert np.sign(np.linalg.det(up[0, 1:] - up[0, 0])) == np.sign(np.linalg.det(cam[0, 1:] - cam[0, 0]))
    assert np.allclose(_standing(cam, "+y"), cam + [0.0, 0.6, 0.0])  # y up already: only lifted


def _old_gallery(out):
    (out / "gallery").mkdir(parents=True)
    for f in ("gt_0.gif", "momask_0.gif", "mld_0.gif", "heatmap_baseline_pose_0.png"):
        (out / "gallery" / f).write_bytes(b"GIF89a")
    cell = {"dataset": "synth_t2m", "protocol": "text2motion", "variant": "", "commit": "c0"}
    old = {"captions": [{"caption": "a person walks", "frames": 40, "ground_truth": "gallery/gt_0.gif", "samples": [
               {**cell, "method": "mld", "gif": "gallery/mld_0.gif", "record": "mld_old.json"},
               {**cell, "method": "momask", "gif": "gallery/momask_0.gif", "record": "momask.json"}]}],
           "pose": [{"method": "heatmap_baseline", "images": ["gallery/heatmap_baseline_pose_0.png"], "record": "h.json"}],
           "curves": {"momask": "curves/momask.png"}}
    (out / "gallery" / "gallery.json").write_text(json.dumps(old))
    return old


def test_merge_keeps_the_other_methods_cells_and_their_files(tmp_path):
    out = tmp_path / "lb"
    old = _old_gallery(out)
    run = tmp_path / "runs" / "work" / "pose" / "run0"
    (run / "overlays" / "synth_coco").mkdir(parents=True)
    Image.fromarray(np.zeros((40, 30, 3), np.uint8)).save(run / "overlays" / "synth_coco" / "000000_pred.png")
    rec = _record("diffusionpose", "coco_ap", "gt_boxes", "runs/work/pose/run0")
    manifest = json.loads(export_gallery([rec], out, root=tmp_path, n=1, merge=True).read_text())
    assert manifest["captions"] == old["captions"] and manifest["actions"] == []
    assert [p["method"] for p in manifest["pose"]] == ["diffusionpose", "heatmap_baseline"]
    assert manifest["curves"] == old["curves"]
    shown = {r["ground_truth"] for r in manifest["captions"]} | {
        s["gif"] for r in manifest["captions"] for s in r["samples"]} | {i for p in manifest["pose"] for i in p["images"]}
    assert {f"gallery/{f.name}" for f in (out / "gallery").iterdir() if f.suffix != ".json"} == shown
    # without merge the same export shows only its own records: the others' files go too
    manifest = json.loads(export_gallery([rec], out, root=tmp_path, n=1).read_text())
    assert manifest["captions"] == [] and [p["method"] for p in manifest["pose"]] == ["diffusionpose"]
    assert not (out / "gallery" / "momask_0.gif").exists()


def test_merge_replaces_a_rerun_method_on_the_same_captions_and_drops_cells_of_other_captions():
    from evaluators.runner.gallery import merge_manifests

    cell = {"method": "mld", "gif": "gallery/mld_0.gif", "record": "mld_new.json"}
    old = {"captions": [{"caption": "a person walks", "ground_truth": "gallery/gt_0.gif", "samples": [
        {"method": "momask", "gif": "gallery/momask_0.gif", "record": "momask.json"},
        {"method": "mld", "gif": "gallery/mld_0.gif", "record": "mld_old.json"}]}], "pose": [], "curves": {}}
    new = {"captions": [{"caption": "a person walks", "ground_truth": "gallery/gt_0.gif", "samples": [cell]}],
           "actions": [], "pose": [], "curves": {}}
    merged = merge_manifests(old, new)
    assert [(s["method"], s["record"]) for s in merged["captions"][0]["samples"]] == \
        [("mld", "mld_new.json"), ("momask", "momask.json")]
    other = {**new, "captions": [{**new["captions"][0], "caption": "a person jumps"}]}
    assert merge_manifests(old, other)["captions"] == other["captions"]  # momask never generated this caption


def test_a_method_page_keeps_the_curves_of_its_own_task_when_a_second_chain_ran_later(tmp_path):
    """MLD's demo trains its text chain, then its action chain: curves/mld is the text chain's."""
    recs = []
    for i, (task, stage_steps) in enumerate((("text2motion", 40), ("action2motion", 7))):
        _scalars(tmp_path / "runs" / f"w{i}" / "vae" / "scalars.csv", stage_steps)
        recs.append({**_record("mld", "reconstruction", "", f"runs/w{i}"),  # no generation: curves only
                     "started": f"2026-12-06T03:0{i}:00Z", "config": {"method": {"task": task}}})
    manifest = json.loads(export_gallery(recs, tmp_path / "lb", root=tmp_path).read_text(encoding="utf-8"))
    assert manifest["curves"] == {"mld": "curves/mld.png"}
    steps, _ = read_published(tmp_path / "lb" / "curves" / "mld.csv")["vae"]["train/loss"]
    assert steps[-1] == 40  # the text chain's 40 steps, not the later action chain's 7
    # without a run of its own task, the newest run's curves are shown ...
    manifest = json.loads(export_gallery(recs[1:], tmp_path / "lb2", root=tmp_path).read_text(encoding="utf-8"))
    assert read_published(tmp_path / "lb2" / "curves" / "mld.csv")["vae"]["train/loss"][0][-1] == 7
    # ... unless merged into a gallery that already shows the method's curves: publishing the action
    # chain alone keeps the text chain's curves on the method's page
    manifest = json.loads(export_gallery(recs[1:], tmp_path / "lb", root=tmp_path, merge=True).read_text())
    assert manifest["curves"] == {"mld": "curves/mld.png"}
    assert read_published(tmp_path / "lb" / "curves" / "mld.csv")["vae"]["train/loss"][0][-1] == 40
