"""The dependency-based semantic parser gives the three levels for hand-checked captions."""

from __future__ import annotations

import pytest
import torch

from methods.hgm3.gat import N_NODES, TypedGAT
from methods.hgm3.graph import EDGE_TYPES, SemanticParser

# (caption, actions, {specific: role}, {(action, specific)}) -- checked by hand against the
# SRL frames a human annotator would write for these captions.
CASES = [
    ("a person walks forward and then turns left.", ["walks", "turns"],
     {"a person": "ARG0", "forward": "ARGM-DIR", "then": "ARGM-TMP", "left": "ARGM-DIR"},
     {("walks", "a person"), ("walks", "forward"), ("turns", "then"), ("turns", "left"), ("turns", "a person")}),
    ("the person picks up an object with the right hand and puts it on a table", ["picks up", "puts"],
     {"the person": "ARG0", "an object": "ARG1", "with the right hand": "ARGM-MNR", "it": "ARG1",
      "on a table": "ARGM-LOC"},
     {("picks up", "an object"), ("picks up", "with the right hand"), ("puts", "it"), ("puts", "on a table"),
      ("puts", "the person")}),
    ("someone slowly crouches down", ["crouches down"], {"someone": "ARG0", "slowly": "ARGM-MNR"},
     {("crouches down", "someone"), ("crouches down", "slowly")}),
    ("a person waves the right hand", ["waves"], {"a person": "ARG0", "the right hand": "ARG1"},
     {("waves", "the right hand")}),
]


@pytest.fixture(scope="module")
def parser():
    return SemanticParser()


@pytest.mark.parametrize("caption,actions,specifics,links", CASES)
def test_three_levels(parser, caption, actions, specifics, links):
    g = parser(caption)
    assert g.caption == caption  # motion level: the whole sentence
    assert [a.text for a in g.actions] == actions
    assert {s.text: s.role for s in g.specifics} == specifics
    got = {(g.actions[a].text, g.specifics[e].text) for a, e, _ in g.relations}
    assert links <= got
    for _a, e, role in g.relations:
        assert role == g.specifics[e].role or role == "ARG0"
        assert caption[g.specifics[e].start:g.specifics[e].end] == g.specifics[e].text


def test_typed_gat_respects_the_graph():
    torch.manual_seed(0)
    gat = TypedGAT(8, dropout=0.0).eval()
    x = torch.randn(1, N_NODES, 8)
    edges = torch.zeros(1, len(EDGE_TYPES), N_NODES, N_NODES, dtype=torch.bool)
    other = EDGE_TYPES.index("OTHERS")
    for i in range(N_NODES):
        edges[0, other, i, i] = True
    edges[0, EDGE_TYPES.index("MA"), 0, 1] = edges[0, EDGE_TYPES.index("MA"), 1, 0] = True
    out = gat(x, edges)
    x2 = x.clone()
    x2[0, 7] += 5.0  # an isolated node must not affect node 0 or 1
    out2 = gat(x2, edges)
    torch.testing.assert_close(out[0, :2], out2[0, :2])
    assert not torch.allclose(out[0, 7], out2[0, 7])
    x3 = x.clone()
    x3[0, 1] += 5.0  # a neighbour does
    assert not torch.allclose(gat(x3, edges)[0, 0], out[0, 0])
