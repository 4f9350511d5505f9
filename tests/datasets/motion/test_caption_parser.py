"""Property-based tests of the HumanML3D caption-line parser."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluators.datasets.base import DatasetError
from evaluators.datasets.motion.t2m_text import Caption, format_caption_line, parse_caption_line, read_caption_file

words = st.text(alphabet=st.characters(blacklist_characters="#/ \r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029",
                                       blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc")), min_size=1, max_size=8)
tokens = st.lists(st.builds(lambda w, p: f"{w}/{p}", words, st.sampled_from(["NOUN", "VERB", "DET", "ADP", "ADJ"])),
                  max_size=12)
captions = st.text(alphabet=st.characters(blacklist_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029",
                                          blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60) \
    .filter(lambda s: s.strip() == s and s)
times = st.floats(min_value=0, max_value=1e4, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(captions, tokens, times, times)
def test_format_parse_round_trip(caption, toks, a, b):
    start, end = min(a, b), max(a, b)
    if start == end:  # an empty span describes nothing (refused); 0#0 is the whole motion
        start = end = 0.0
    c = Caption(caption, toks, start, end)
    assert parse_caption_line(format_caption_line(c)) == c
    assert parse_caption_line(format_caption_line(c)).tokens == toks


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_arbitrary_lines_parse_or_raise_dataset_error(line):
    try:
        c = parse_caption_line(line, "x.txt:1")
    except DatasetError as e:
        assert "x.txt" in str(e)
    else:
        assert c.caption and math.isfinite(c.start) and c.end >= c.start >= 0


def test_nan_span_means_whole_motion():
    c = parse_caption_line("a man runs.#a/DET man/NOUN run/VERB#nan#nan")
    assert c.whole_motion


@pytest.mark.parametrize("line", ["no fields at all", "cap#a/DET#0.0", "#a/DET#0.0#0.0", "cap#word#0.0#0.0",
                                  "cap#a/DET#zero#0.0", "cap#a/DET#2.0#1.0", "cap#a/DET#-1#0.0", "cap#a/DET#inf#inf"])
def test_malformed_lines_raise(line):
    with pytest.raises(DatasetError, match="t.txt"):
        parse_caption_line(line, "t.txt:3")


def test_caption_file_errors_name_the_file(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(DatasetError, match="empty.txt.*empty"):
        read_caption_file(empty)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe caption#a/DET#0#0\n")
    with pytest.raises(DatasetError, match="bad.txt"):
        read_caption_file(bad)
    with pytest.raises(DatasetError, match="missing"):
        read_caption_file(tmp_path / "nope.txt")
