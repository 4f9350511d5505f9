"""The optional side-by-side benchmark against the authors' MoMask: when it skips, and what it writes.

No official code is needed here: ``official_root`` must name the reason it skips (variable unset,
or a folder that is not a momask-codes checkout), and ``write_record`` must write exactly the keys
the speed page reads, with the ratio as official median over suite median and the distortion
flag of :class:`benchmarks.alternate.Alternation`.
"""

from __future__ import annotations

import json

from benchmarks import official_momask as O
from benchmarks import test_side_by_side_momask as S
from benchmarks.alternate import Alternation, machine_folder
from evaluators.records import hardware_info

KEYS = {"workload", "method", "batch", "official_s", "suite_s", "ratio", "target", "machine", "threads",
        "cpu_over_wall", "distorted", "first_call_s", "commit", "date"}


def test_skips_with_the_reason(monkeypatch, tmp_path):
    monkeypatch.delenv(O.ENV, raising=False)
    root, why = O.official_root()
    assert root is None and O.ENV in why
    monkeypatch.setenv(O.ENV, str(tmp_path))
    root, why = O.official_root()
    assert root is None and "models/mask_transformer/transformer.py" in why
    (tmp_path / "models" / "mask_transformer").mkdir(parents=True)
    (tmp_path / "models" / "mask_transformer" / "transformer.py").write_text("")
    assert O.official_root() == (tmp_path, "")


def test_record_keys_ratio_and_distortion(monkeypatch, tmp_path):
    monkeypatch.setattr(S, "OUT", tmp_path)
    alt = Alternation(times={"official": [3.0, 5.0, 4.0], "suite": [2.0, 1.0, 3.0]},
                      first_call_s={"official": 6.0, "suite": 90.0}, cpu_over_wall=0.5, threads=1)
    rec = S.write_record("momask_sample_b1", 1, 1.5, alt)
    assert set(rec) == KEYS
    (written,) = tmp_path.glob("*/momask_sample_b1.json")  # in the folder of this machine's CPU model
    assert written.parent.name == machine_folder(hardware_info()["cpu"])
    assert json.loads(written.read_text()) == rec
    assert (rec["official_s"], rec["suite_s"], rec["ratio"]) == (4.0, 2.0, 2.0)  # medians 4 and 2
    assert rec["distorted"] is True  # half a core for a 1-thread run
    assert rec["first_call_s"] == {"official": 6.0, "suite": 90.0}
