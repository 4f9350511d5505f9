"""Reference tables: every paper number of the shared references is present, with its status."""

from __future__ import annotations

import re

import pytest

from leaderboards.references import ReferenceError, load_papers, load_sources, parse_cell
from tests.conftest import need_shared

SOURCES = set(load_sources())


@pytest.mark.parametrize(
    "text, value, ci, status, sources",
    [
        ("0.511±.003 [A]", 0.511, 0.003, "verified", ("A",)),
        ("0.772±.002 [A,B,C,D,G]", 0.772, 0.002, "verified", ("A", "B", "C", "D", "G")),
        ("86.4 UNVERIFIED (seed)", 86.4, None, "unverified", ()),
        ("0.217 [C]", 0.217, None, "verified", ("C",)),
        ("UNVERIFIED", None, None, "unverified", ()),
        ("–", None, None, "not_reported", ()),
    ],
)
def test_parse_cell(text, value, ci, status, sources):
    c = parse_cell(text, where="t", known_sources=SOURCES)
    assert (c.value, c.ci95, c.status, c.sources) == (value, ci, status, sources)


@pytest.mark.parametrize("bad", ["0.5", "0.5 [Z]", "abc", 0.5, "0.5±"])
def test_bad_cells_are_rejected_with_location(bad):
    with pytest.raises(ReferenceError, match="where-x"):
        parse_cell(bad, where="where-x", known_sources=SOURCES)


def test_unverified_numbers_render_as_unverified():
    c = parse_cell("0.077 UNVERIFIED (recalled)", where="t", known_sources=SOURCES)
    assert "UNVERIFIED" in c.render() and "0.077" in c.render()


def _all_cells():
    return [(p, t, r, col, c) for p in load_papers() for t in p.tables for r in t.rows for col, c in r.cells.items()]


def test_four_papers_have_tables():
    lbs = {p.leaderboard for p in load_papers()}
    assert {"macdiff", "mld", "hgm3", "diffusionpose"} <= lbs
    for p in load_papers():
        assert p.tables and all(t.rows for t in p.tables)


def test_every_ci_number_of_reported_numbers_md_is_in_the_references():
    """Each `value±ci` printed in reported_numbers.md appears in some reference cell (same value and CI)."""
    text = need_shared("..", "reference", "reported_numbers.md").read_text(encoding="utf-8")
    wanted = {(float(v), float(ci)) for v, ci in re.findall(r"(\d*\.\d+)±(\.\d+)", text)}
    have = {(c.value, c.ci95) for *_, c in _all_cells() if c.ci95 is not None}
    assert len(wanted) > 100
    assert wanted <= have, sorted(wanted - have)


def test_seed_numbers_stay_unverified():
    """Every 'N UNVERIFIED (seed)' value of reported_numbers.md is present and still flagged."""
    text = need_shared("..", "reference", "reported_numbers.md").read_text(encoding="utf-8")
    seed_vals = {float(v) for v in re.findall(r"(\d+\.\d+) UNVERIFIED \(seed\)", text)}
    cells = [c for *_, c in _all_cells() if c.value in seed_vals]
    assert seed_vals <= {c.value for c in cells}
    assert all(c.status == "unverified" for c in cells if c.why == "seed")


def test_macdiff_seed_tables_are_all_present():
    """Every number in the MacDiff seed's tables (linear, fine-tune, semi, ablations) is in macdiff.yaml."""
    seed = need_shared("..", "seeds", "000_166abb6057304b95.txt").read_text(encoding="utf-8")
    body = seed[seed.index("Main Results"):seed.index("Highlights")]
    nums = {float(x) for x in re.findall(r"(?<![\d.])(\d{2}\.\d)(?![\d%])", body)}
    nums |= {0.033, 0.191}
    mac = next(p for p in load_papers() if p.leaderboard == "macdiff")
    have = {c.value for t in mac.tables for r in t.rows for c in r.cells.values()}
    assert nums <= have, sorted(nums - have)


def _table_yaml(extra: str) -> str:
    return ("paper: P\nleaderboard: p\nmethods: [m]\ntables:\n  - id: t\n    title: T\n    source: S\n"
            "    protocol: text2motion\n    columns: {fid: FID}\n" + extra + "    rows:\n"
            "      - {name: M, cells: {fid: \"0.5±.01 [A]\"}}\n")


@pytest.mark.parametrize("extra, match", [
    ("    repetitions: 1\n    repetitions_source: x\n", "repetitions must be an integer >= 2"),
    ("    repetitions: twenty\n    repetitions_source: x\n", "repetitions must be an integer >= 2"),
    ("    repetitions: 20\n", "repetitions needs a repetitions_source"),
])
def test_table_repetitions_are_checked(tmp_path, extra, match):
    (tmp_path / "sources.yaml").write_text("A: a source\n")
    (tmp_path / "p.yaml").write_text(_table_yaml(extra))
    with pytest.raises(ReferenceError, match=f"p.yaml: table t: {match}"):
        load_papers(tmp_path)


def test_the_text_to_motion_tables_state_their_repetitions():
    """The unpaired comparison with the papers needs the repetitions behind their ± (T2M: 20)."""
    tables = {(p.key, t.id): t for p in load_papers() for t in p.tables}
    for key in (("mld", "t2m_humanml3d"), ("mld", "t2m_kit"), ("hgm3", "t2m_humanml3d"), ("hgm3", "t2m_kit")):
        assert tables[key].repetitions == 20 and "20" in tables[key].repetitions_source
    assert tables[("mld", "t2m_humanml3d")].reproduced_row("mld", "") == "MLD-1"
    assert tables[("mld", "t2m_humanml3d")].reproduced_row("mld", "real") == "Real"
    assert tables[("mld", "t2m_humanml3d")].reproduced_row("mld", "steps=5") is None
