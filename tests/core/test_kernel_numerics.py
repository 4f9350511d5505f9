"""The kernel-numerics id: equal where the kernels round alike, different where one family of them
rounds otherwise, and what decides whether a published record can be reproduced bit for bit here.

A different rounding is made on purpose through the switches the libraries themselves provide
(ATen's ``ATEN_CPU_CAPABILITY``, oneDNN's ``ONEDNN_MAX_CPU_ISA``), in a fresh interpreter: the id
must see what the library changed, which no restatement of our own code can show.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import evaluators.core.kernel_numerics as kernel_numerics_module
from evaluators.core.kernel_numerics import kernel_numerics, torch_kernels_id
from evaluators.records import bitwise_mismatch, hardware_info

REPO = Path(__file__).resolve().parents[2]
PROBE = ("import json; from evaluators.core.kernel_numerics import kernel_numerics, torch_kernels_id; "
         "print(json.dumps({**kernel_numerics(1), 'torch_id': torch_kernels_id(1), 'torch_id_2': torch_kernels_id(2)}))")


def _fresh_id(**env: str) -> dict:
    res = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO), **env})
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def test_same_kernels_give_the_same_id_in_a_fresh_process():
    assert _fresh_id() == {**kernel_numerics(1), "torch_id": torch_kernels_id(1), "torch_id_2": torch_kernels_id(2)}


@pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() == "DEFAULT", reason="ATen already runs its default kernels")
def test_aten_running_other_vector_kernels_changes_the_id():
    other = _fresh_id(ATEN_CPU_CAPABILITY="default")
    assert other["cpu_capability"] == "DEFAULT"  # the switch took effect
    assert other["id"] != kernel_numerics(1)["id"]
    assert other["torch_id"] != torch_kernels_id(1)


@pytest.mark.skipif(platform.machine() != "x86_64" or "avx2" not in _cpu_flags(),
                    reason="oneDNN's SSE4.1 cap changes its kernels only on a CPU with wider vectors")
def test_onednn_capped_to_narrower_vectors_changes_the_id():
    other = _fresh_id(ONEDNN_MAX_CPU_ISA="SSE41")
    assert other["id"] != kernel_numerics(1)["id"] and other["torch_id"] != torch_kernels_id(1)


def test_the_torch_id_does_not_follow_the_thread_counts_read_at_start_up():
    """numpy's OpenBLAS reads its thread count from the environment at start-up; torch's kernels (what
    trains a cached model) follow ``torch.set_num_threads`` alone. So the id that names cached models
    must be the same in a pytest worker started at 1 thread that trains at 2 and in the 2-thread
    process it starts to load that model."""
    one = _fresh_id(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    two = _fresh_id(OMP_NUM_THREADS="2", MKL_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2")
    assert one["torch_id"] == two["torch_id"] == torch_kernels_id(1)
    assert one["torch_id_2"] == two["torch_id_2"] == torch_kernels_id(2)


def test_the_id_leaves_generators_and_thread_count_as_they_were():
    torch.manual_seed(7)
    np.random.seed(7)
    before = torch.get_num_threads()
    kernel_numerics_module._at_threads.cache_clear()  # computed now, not read from the memo
    got = kernel_numerics(before + 1)
    assert got["threads"] == before + 1 and torch.get_num_threads() == before
    after_torch, after_np = torch.rand(3), np.random.rand(3)
    torch.manual_seed(7)
    np.random.seed(7)
    assert torch.equal(after_torch, torch.rand(3)) and np.array_equal(after_np, np.random.rand(3))


def test_every_record_names_the_numerics_of_its_thread_count():
    hw = hardware_info()
    assert hw["numerics"] == kernel_numerics(torch.get_num_threads())


def _here(**change) -> dict:
    return {**hardware_info(), **change}


def test_a_record_with_the_same_numerics_id_is_comparable():
    hw = _here()
    assert bitwise_mismatch(hw) is None


def test_a_record_with_another_numerics_id_is_not_and_both_ids_are_named():
    mine = hardware_info()["numerics"]
    theirs = {**mine, "id": "0123456789ab"}
    why = bitwise_mismatch(_here(numerics=theirs, cpu="Intel(R) Xeon(R) Processor"))
    assert why and "0123456789ab" in why and mine["id"] in why and "Intel(R) Xeon(R) Processor" in why


def test_a_record_made_at_another_thread_count_is_not_comparable():
    mine = hardware_info()["numerics"]
    why = bitwise_mismatch(_here(numerics={**mine, "threads": mine["threads"] + 1}))
    assert why and "threads" in why


def test_the_comparison_is_against_the_block_given():
    theirs = _here()
    elsewhere = {**theirs, "numerics": {**theirs["numerics"], "id": "fedcba987654"}}
    assert bitwise_mismatch(theirs, here=elsewhere) and bitwise_mismatch(theirs, here=theirs) is None


def test_an_older_record_is_compared_by_cpu_model_and_torch():
    old = {k: v for k, v in _here().items() if k != "numerics"}
    assert bitwise_mismatch(old) is None
    why = bitwise_mismatch({**old, "cpu": "Some Other CPU 9000"})
    assert why and "Some Other CPU 9000" in why
    why = bitwise_mismatch({**old, "torch": "1.0.0"})
    assert why and "1.0.0" in why and torch.__version__ in why
