"""NTU RGB+D 60/120 evaluation splits, with the exact ids of the official scripts.

Source: MAMP / MacDiff ``data/ntu/seq_transformation.py`` and ``data/ntu120/seq_transformation.py``
(``get_indices``), which follow the NTU RGB+D papers (Shahroudy et al. 2016; Liu et al. 2019):

- NTU-60 cross-subject: the 20 training performers below, the other 20 of 1..40 test.
- NTU-60 cross-view: cameras 2 and 3 train, camera 1 test.
- NTU-120 cross-subject: the 53 training performers below, the rest of 1..106 test.
- NTU-120 cross-setup: even setup ids train, odd setup ids test (1..32).

Sample order inside a split follows ``get_indices``: grouped by id in the order of the id
list (e.g. all of performer 1, then performer 2, ...), and by name order inside a group;
so arrays built here line up row for row with the official ``NTU60_XSub.npz``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evaluators.datasets.base import DatasetError
from evaluators.datasets.skeleton.ntu_reader import parse_name

NTU60_XSUB_TRAIN = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38)
NTU60_XSUB_TEST = tuple(i for i in range(1, 41) if i not in NTU60_XSUB_TRAIN)
NTU60_XVIEW_TRAIN = (2, 3)
NTU60_XVIEW_TEST = (1,)
NTU120_XSUB_TRAIN = (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38,
                     45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82,
                     83, 84, 85, 86, 89, 91, 92, 93, 94, 95, 97, 98, 100, 103)
NTU120_XSUB_TEST = tuple(i for i in range(1, 107) if i not in NTU120_XSUB_TRAIN)
NTU120_XSET_TRAIN = tuple(range(2, 33, 2))
NTU120_XSET_TEST = tuple(range(1, 33, 2))

#: benchmark -> (name field the rule reads, train ids, test ids)
RULES: dict[str, tuple[str, tuple[int, ...], tuple[int, ...]]] = {
    "ntu60_xsub": ("performer", NTU60_XSUB_TRAIN, NTU60_XSUB_TEST),
    "ntu60_xview": ("camera", NTU60_XVIEW_TRAIN, NTU60_XVIEW_TEST),
    "ntu120_xsub": ("performer", NTU120_XSUB_TRAIN, NTU120_XSUB_TEST),
    "ntu120_xset": ("setup", NTU120_XSET_TRAIN, NTU120_XSET_TEST),
}
#: NTU-60 = setups 1..17 with actions 1..60; NTU-120 adds setups 18..32 and actions 61..120.
NTU60_MAX_SETUP, NTU60_NUM_CLASSES, NTU120_NUM_CLASSES = 17, 60, 120


def in_ntu60(name: str) -> bool:
    f = parse_name(name)
    return f["setup"] <= NTU60_MAX_SETUP and f["action"] <= NTU60_NUM_CLASSES


def split_indices(names: Sequence[str], rule: str) -> dict[str, np.ndarray]:
    """Row indices of ``names`` in each split under ``rule`` (a key of :data:`RULES`), official order.

    A name whose id belongs to neither list raises DatasetError (it is not an NTU sample of
    that dataset, e.g. an NTU-120 performer id given to an NTU-60 rule).
    """
    if rule not in RULES:
        raise KeyError(f"unknown NTU split rule {rule!r}; known: {sorted(RULES)}")
    field, train_ids, test_ids = RULES[rule]
    ids = np.array([parse_name(n)[field] for n in names], dtype=np.int64)
    order = np.argsort(np.asarray(names, dtype=object), kind="stable") if len(names) else np.zeros(0, np.int64)
    known = set(train_ids) | set(test_ids)
    bad = [names[i] for i in range(len(names)) if ids[i] not in known]
    if bad:
        raise DatasetError(f"{len(bad)} samples have a {field} id outside the {rule} lists (first: {bad[0]})",
                           bad[0])
    out = {}
    for split, group in (("train", train_ids), ("test", test_ids)):
        rows = [order[ids[order] == g] for g in group]
        out[split] = np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64)
    return out
