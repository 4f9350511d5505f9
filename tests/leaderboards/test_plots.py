"""The plots a researcher reads: one colour per method across every figure, a panel per metric
with its direction, error bars exactly where the records carry an interval, and every measured
step count labelled. Checked on the matplotlib figures themselves (``_save`` is intercepted)."""

from __future__ import annotations

import json

import matplotlib.colors as mcolors
import pytest
from matplotlib.container import ErrorbarContainer

import leaderboards.plots as plots
from leaderboards.style import METHOD_COLORS, color_of


def _rec(method: str, protocol: str, steps: int, metrics: dict) -> dict:
    return {"method": method, "protocol": protocol, "dataset": "synth", "data": "synthetic", "scale": "smoke",
            "variant": f"steps={steps}", "metrics": metrics}


def _t2m(method: str, steps: int, fid: float, ci: float | None) -> dict:
    m = {"fid": {"value": fid, "ci95": ci, "higher_is_better": False, "unit": ""},
         "r_precision_top1": {"value": 0.1 * steps, "ci95": ci, "higher_is_better": True, "unit": ""},
         "aits_s": {"value": 0.01 * steps, "ci95": None, "higher_is_better": False, "unit": "s"}}
    return _rec(method, "text2motion", steps, m)


def _pose(method: str, steps: int, ap: float) -> dict:
    return _rec(method, "coco_ap", steps, {"ap": {"value": ap, "ci95": None, "higher_is_better": True, "unit": "%"},
                                           "infer_s_per_instance": {"value": 0.002 * steps, "unit": "s"}})


@pytest.fixture
def figures(monkeypatch, tmp_path):
    seen = []

    def keep(fig, path):
        seen.append((fig, path))
        return path

    monkeypatch.setattr(plots, "_save", keep)
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path / "cache"))  # every figure drawn, none copied from a cache
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "cpu.json").write_text(json.dumps({"machine_info": {"scale": "paper"}, "benchmarks": [
        {"name": f"s[{m}-{s}]", "stats": {"median": 0.01 * s},
         "extra_info": {"method": m, "what": "sampling", "batch": 1, "steps": s}}
        for m in ("mld", "momask") for s in (1, 2, 5)]}), encoding="utf-8")
    records = [_t2m("mld", 2, 20.0, 1.5), _t2m("mld", 5, 18.0, 1.0), _t2m("momask", 2, 9.0, None),
               _t2m("momask", 5, 8.5, None), _pose("diffusionpose", 1, 0.3), _pose("diffusionpose", 10, 0.2)]
    plots.write_plots(records, tmp_path / "plots", [bench])
    return {p.name: fig for fig, p in seen}


def _series(fig):
    """(axes, label, colour hex, has y error bars) of every plotted series of a figure."""
    out = []
    for ax in fig.axes:
        for c in ax.containers:  # errorbar(): the label is the container's, the colour its data line's
            if isinstance(c, ErrorbarContainer):
                out.append((ax, c.get_label(), mcolors.to_hex(c.lines[0].get_color()), c.has_yerr))
        for line in ax.get_lines():  # plot(): a labelled line
            if not line.get_label().startswith("_"):
                out.append((ax, line.get_label(), mcolors.to_hex(line.get_color()), False))
    return out


def test_one_figure_per_protocol_and_kind(figures):
    assert set(figures) == {"sampling_latency_vs_steps.png", "quality_vs_steps_text2motion.png",
                            "quality_vs_time_text2motion.png", "quality_vs_steps_coco_ap.png",
                            "quality_vs_time_coco_ap.png"}


def test_each_method_has_one_colour_across_every_figure(figures):
    colours: dict[str, set[str]] = {}
    for fig in figures.values():
        for _, label, colour, _ in _series(fig):
            colours.setdefault(label.split(" (")[0], set()).add(colour)
    assert set(colours) == {"mld", "momask", "diffusionpose"}
    for method, cs in colours.items():
        assert cs == {color_of(method)}, (method, cs)
    assert len({color_of(m) for m in METHOD_COLORS}) == len(METHOD_COLORS)  # no two methods share one


def test_error_bars_exactly_where_records_have_intervals(figures):
    for name in ("quality_vs_steps_text2motion.png", "quality_vs_time_text2motion.png"):
        bars = {label.split(" (")[0]: has for _, label, _, has in _series(figures[name])}
        assert bars == {"mld": True, "momask": False}, name
    assert not any(has for *_, has in _series(figures["quality_vs_steps_coco_ap.png"]))


def test_a_panel_per_metric_with_its_direction_and_steps_labelled(figures):
    fig = figures["quality_vs_steps_text2motion.png"]
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["FID (lower is better)", "R-Precision top 1 (higher is better)"]
    for ax in fig.axes:
        assert [float(t) for t in ax.get_xticks()] == [2.0, 5.0]
    pose = figures["quality_vs_steps_coco_ap.png"].axes[0]
    assert pose.get_ylabel() == "ap (%)" and [float(t) for t in pose.get_xticks()] == [1.0, 10.0]
    # the time plot says which point is which step count
    texts = sorted(t.get_text() for ax in figures["quality_vs_time_text2motion.png"].axes for t in ax.texts)
    assert texts == sorted(["2", "5"] * 4)


def test_unknown_methods_get_a_stable_colour_apart_from_the_known_ones():
    c = color_of("some_plugin_method")
    assert c == color_of("some_plugin_method") and c not in METHOD_COLORS.values()
