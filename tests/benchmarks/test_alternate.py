"""The alternation timer calls contenders in turn, the same number of times each."""

import pytest

from benchmarks.alternate import alternate, machine_folder


def test_calls_alternate_and_first_call_is_timed_apart():
    calls = []
    res = alternate({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3, warmup=2)
    # warm-up: a twice, b twice; then strictly alternating rounds
    assert calls == ["a", "a", "b", "b", "a", "b", "a", "b", "a", "b"]
    assert {k: len(v) for k, v in res.times.items()} == {"a": 3, "b": 3}
    assert set(res.first_call_s) == {"a", "b"}
    assert res.ratio("a", "b") == pytest.approx(res.median("a") / res.median("b"))


@pytest.mark.parametrize("repeats, warmup", [(0, 1), (3, 0)])
def test_rejects_empty_measurements(repeats, warmup):
    with pytest.raises(ValueError, match="must be >= 1"):
        alternate({"a": lambda: None}, repeats=repeats, warmup=warmup)


@pytest.mark.parametrize("cpu, folder", [
    ("Intel(R) Xeon(R) Processor", "intel-xeon"),  # /proc/cpuinfo model names, as they are written
    ("AMD EPYC", "amd-epyc"),
    ("AMD EPYC 9654 96-Core Processor", "amd-epyc-9654-96-core"),
    ("Intel(R) Core(TM) i7-10700 CPU @ 2.90GHz", "intel-core-i7-10700"),
    ("../../etc", "etc"),  # a name never leaves the side-by-side folder
    ("", "unknown-cpu"),
])
def test_each_cpu_model_gets_its_own_folder(cpu, folder):
    assert machine_folder(cpu) == folder
