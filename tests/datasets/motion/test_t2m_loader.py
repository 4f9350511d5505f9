"""MotionTextDataset on the real sample files and on hand-made folders (official sample rules)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from evaluators.datasets import load_dataset
from evaluators.datasets.motion.t2m_dataset import MotionTextDataset, crop_length, load_stat, read_split_file
from evaluators.datasets.motion.t2m_text import Caption, format_caption_line, read_tmr_annotations
from tests.conftest import need_shared


def test_real_humanml3d_stats_and_splits():
    root = need_shared("humanml3d", "HumanML3D")
    for name in ("Mean.npy", "Std.npy"):
        assert load_stat(root / name, 263).shape == (263,)
    sizes = {s: len(read_split_file(root / f"{s}.txt")) for s in ("train", "val", "test", "all")}
    assert sizes == {"train": 23384, "val": 1460, "test": 4384, "all": 29228}
    ids = read_split_file(root / "all.txt")
    assert sum(i.startswith("M") for i in ids) == 14614 and len(set(ids)) == 29228
    assert set(read_split_file(root / "train.txt")) | set(read_split_file(root / "val.txt")) == \
        set(read_split_file(root / "train_val.txt"))


def test_real_kit_annotations_and_splits():
    root = need_shared("kitml")
    ann = read_tmr_annotations(root / "annotations.json")
    assert len(ann) == 5766
    first = ann["00001"]
    assert first["captions"][0] == Caption("A person is walking forwards.", [], 0.0, 0.0)  # whole motion
    splits = {s: read_split_file(root / "splits" / f"{s}.txt") for s in ("train", "val", "test", "all")}
    assert {k: len(v) for k, v in splits.items()} == {"train": 4688, "val": 292, "test": 786, "all": 5766}
    assert set(splits["all"]) == set(ann)


def _folder(tmp_path, motions: dict[str, np.ndarray], texts: dict[str, list[str]], splits: dict[str, list[str]],
            dim=263):
    root = tmp_path / "HumanML3D"
    (root / "new_joint_vecs").mkdir(parents=True)
    (root / "texts").mkdir()
    for k, m in motions.items():
        np.save(root / "new_joint_vecs" / f"{k}.npy", m.astype(np.float32))
    for k, lines in texts.items():
        (root / "texts" / f"{k}.txt").write_text("\n".join(lines) + "\n")
    for s, ids in splits.items():
        (root / f"{s}.txt").write_text("\n".join(ids) + "\n")
    np.save(root / "Mean.npy", np.zeros(dim, np.float32))
    np.save(root / "Std.npy", np.ones(dim, np.float32))
    return root


def test_real_sample_through_the_loader(tmp_path):
    root = need_shared("humanml3d", "HumanML3D")
    vecs = np.load(root / "new_joint_vecs" / "012314.npy")
    folder = _folder(tmp_path, {"012314": vecs}, {"012314": ["a person jumps.#a/DET person/NOUN jump/VERB#0.0#0.0"]},
                     {"test": ["012314"]})
    for name in ("Mean.npy", "Std.npy"):
        (folder / name).write_bytes((root / name).read_bytes())
    ds = load_dataset({"name": "humanml3d", "root": str(tmp_path)})  # parent of HumanML3D/ accepted
    (s,) = ds.split("test")
    np.testing.assert_array_equal(s.motion, vecs)
    assert ds.split_names == ("test",) and ds.fps == 20 and ds.feat_dim == 263
    np.testing.assert_allclose(ds.denormalise(ds.normalise(vecs)), vecs, atol=1e-5)
    np.testing.assert_allclose(ds.features_to_joints(vecs), np.load(root / "new_joints" / "012314.npy"), atol=1e-5)


def test_caption_subclip_cropping_and_length_rules(tmp_path):
    rng = np.random.default_rng(0)
    long = rng.normal(size=(150, 263))
    motions = {"000001": long, "000002": rng.normal(size=(39, 263)), "000003": rng.normal(size=(200, 263)),
               "000004": rng.normal(size=(199, 263)), "000005": rng.normal(size=(120, 263))}
    cap = "a person walks.#a/DET person/NOUN walk/VERB#{}#{}"
    texts = {
        "000001": [cap.format(0.0, 0.0), cap.format(1.0, 4.0), cap.format(2.0, 3.0), cap.format("nan", "nan")],
        "000002": [cap.format(0.0, 0.0)],           # 39 frames < 40: dropped
        "000003": [cap.format(0.0, 0.0)],           # 200 frames: dropped (official keeps T < 200)
        "000004": [cap.format(0.0, 0.0)],           # 199: kept
        "000005": [cap.format(0.5, 3.5)],           # only a sub-clip caption: parent dropped
    }
    root = _folder(tmp_path, motions, texts, {"train": list(motions)})
    ds = MotionTextDataset(root, name="t", seed=0)
    by = {s.name: s for s in ds.split("train")}
    assert set(by) >= {"000001", "000004"} and not {"000002", "000003", "000005"} & set(by)
    subs = [n for n in by if "_" in n]
    assert len(subs) == 2 and all(n[0] in "ABCDEFGHIJKLMNOPQRSTUVW" and n[1] == "_" for n in subs)
    sub1 = next(by[n] for n in subs if n.endswith("000001"))
    np.testing.assert_array_equal(sub1.motion, long[20:80].astype(np.float32))   # int(1.0*20):int(4.0*20)
    sub5 = next(by[n] for n in subs if n.endswith("000005"))
    assert sub5.length == 60                                                    # [10:70]
    # the 2.0-3.0 s caption (20 frames < 40) is dropped; NaN span counts as whole motion
    assert len(by["000001"].texts) == 2 and all(c.whole_motion for c in by["000001"].texts)
    assert [s.name for s in MotionTextDataset(root, name="t", seed=0).split("train")] == list(by)  # seeded names


@pytest.mark.parametrize("length,max_len,coin,expect", [(150, 196, "single", 148), (150, 196, "double", 144),
                                                         (199, 196, "single", 196), (43, 196, "double", 36)])
def test_crop_length_matches_official_rule(length, max_len, coin, expect):
    assert crop_length(length, max_len, 4, coin) == expect


def test_torch_dataset_items(tmp_path):
    rng = np.random.default_rng(1)
    motions = {f"{i:06d}": rng.normal(size=(int(rng.integers(40, 120)), 263)) for i in range(6)}
    texts = {k: ["first caption.#first/ADJ caption/NOUN#0.0#0.0", "second one.#second/ADJ one/NUM#0.0#0.0"]
             for k in motions}
    root = _folder(tmp_path, motions, texts, {"train": list(motions)})
    mean = rng.normal(size=263).astype(np.float32)
    np.save(root / "Mean.npy", mean)
    ds = MotionTextDataset(root, name="t")
    td = ds.torch_dataset("train", max_len=196, seed=5)
    seen = set()
    for _ in range(6):
        for i in range(len(td)):
            it = td[i]
            n = it["length"]
            assert it["motion"].shape == (196, 263) and n % 4 == 0 and n <= len(motions[it["name"]])
            assert torch.all(it["motion"][n:] == 0)
            full = (motions[it["name"]].astype(np.float32) - mean)
            starts = [s for s in range(len(full) - n + 1) if np.allclose(full[s:s + n], it["motion"][:n].numpy(),
                                                                         atol=1e-5)]
            assert starts, "crop must be a contiguous window of the normalised motion"
            seen.add(it["caption"])
    assert seen == {"first caption.", "second one."}
    a = [td2["length"] for td2 in [ds.torch_dataset("train", seed=9)[i] for i in range(6)]]
    b = [td2["length"] for td2 in [ds.torch_dataset("train", seed=9)[i] for i in range(6)]]
    assert a == b
    raw = ds.torch_dataset("train", normalize=False)[0]
    m, n = motions[raw["name"]].astype(np.float32), raw["length"]
    assert any(np.allclose(m[s:s + n], raw["motion"][:n].numpy()) for s in range(len(m) - n + 1))
    batch = ds.collate([td[i] for i in range(4)])
    assert batch["motion"].shape == (4, 196, 263) and batch["length"].dtype == torch.long
    assert len(batch["tokens"]) == 4 and all("/" in t for t in batch["tokens"][0])


def test_kit_folder_with_tmr_annotations(tmp_path):
    rng = np.random.default_rng(2)
    ids = ["00001", "00002", "00003"]
    root = tmp_path / "KIT-ML"
    (root / "new_joint_vecs").mkdir(parents=True)
    (root / "splits").mkdir()
    for k in ids:
        np.save(root / "new_joint_vecs" / f"{k}.npy", rng.normal(size=(30, 251)).astype(np.float32))
    np.save(root / "Mean.npy", np.zeros(251, np.float32))
    np.save(root / "Std.npy", np.ones(251, np.float32))
    (root / "splits" / "train.txt").write_text("\n".join(ids))
    ann = {k: {"path": f"KIT/{k}", "duration": 2.4, "annotations": [
        {"seg_id": f"{k}_0", "text": "A person kicks with the left leg.", "start": 0.0, "end": 2.4}]} for k in ids}
    (root / "annotations.json").write_text(json.dumps(ann))
    ds = load_dataset({"name": "kit_ml", "root": str(root)})
    assert (ds.feat_dim, ds.joints_num, ds.fps, ds.min_motion_length) == (251, 21, 12.5, 24)
    samples = ds.split("train")
    assert len(samples) == 3
    assert samples[0].texts[0].tokens == ["A/DET", "person/NOUN", "kick/VERB", "with/ADP", "the/DET", "left/ADJ",
                                          "leg/NOUN"]


def test_caption_line_format_is_the_humanml3d_one():
    line = format_caption_line(Caption("a man walks.", ["a/DET", "man/NOUN", "walk/VERB"], 0.0, 0.0))
    assert line == "a man walks.#a/DET man/NOUN walk/VERB#0.0#0.0"


def test_real_index_csv_and_remaining_split_files():
    from evaluators.datasets.motion.t2m_dataset import read_humanml3d_index

    rows = read_humanml3d_index(need_shared("humanml3d", "index.csv"))
    ids = [r["id"] for r in rows]
    assert len(rows) == 14616 and len(set(ids)) == len(ids)
    all_ids = read_split_file(need_shared("humanml3d", "HumanML3D", "all.txt"))
    plain = {i for i in all_ids if not i.startswith("M")}
    assert plain <= set(ids) and {i[1:] for i in all_ids if i.startswith("M")} == plain
    assert all(r["end_frame"] == -1 or r["end_frame"] > r["start_frame"] for r in rows)
    kit = need_shared("kitml", "splits")
    sizes = {p.stem: len(read_split_file(p)) for p in sorted(kit.glob("*.txt"))}
    assert sizes["nsim_test"] == 101 and sizes["train_tiny"] == sizes["val_tiny"] == sizes["test_tiny"] == 10
