"""The published leaderboard pages: every markdown table becomes an HTML table,
every plot a page names is shown and loads, the gallery shows every generator's GIF for the same
captions (and actions) beside the ground truth, and each method's page its training curves; checked by the
stdlib HTML parser and, where a browser is installed, by headless Chromium rendering the pages
from a local HTTP server (which also saves a screenshot of the gallery, a CI artifact)."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import subprocess
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from leaderboards.gallery_page import GALLERY_MANIFEST
from leaderboards.make_tables import LB_DIR
from leaderboards.references import load_papers
from leaderboards.screenshot import CHROMIUM_FLAGS, QuietHandler, find_chromium
from leaderboards.site import build_site

CHROMIUM = find_chromium()


ARTIFACTS_ENV = "MOTIONREPRO_ARTIFACTS"  # CI sets it to a folder the workflow uploads
WORKFLOW = LB_DIR.parent / ".github" / "workflows" / "ci.yml"


class _Counter(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables, self.imgs, self.cells, self.links = 0, [], [], []
        self._cell = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables += 1
        elif tag == "img":
            self.imgs.append(dict(attrs)["src"])
        elif tag == "a":
            self.links.append(dict(attrs).get("href", ""))
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append(self._cell)
            self._cell = None


def markdown_tables(text: str) -> int:
    """Tables in GitHub markdown: a header row directly followed by a |---| delimiter row."""
    lines = text.splitlines()
    delim = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
    return sum(1 for i in range(1, len(lines)) if delim.match(lines[i]) and "|" in lines[i - 1])


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    build_site(out)
    return out


def test_every_table_and_plot_reaches_the_html(site):
    for md in sorted(LB_DIR.glob("*.md")):
        text = md.read_text(encoding="utf-8")
        parsed = _Counter()
        parsed.feed((site / f"{md.stem}.html").read_text(encoding="utf-8"))
        assert parsed.tables == markdown_tables(text), md.name
        assert not any(c.strip().startswith("|") for c in parsed.cells), f"{md.name}: raw pipe in a cell"
        for src in parsed.imgs:
            assert (site / src).is_file() and (site / src).stat().st_size > 0, (md.name, src)
        for name in set(re.findall(r"((?:plots|sensitivity)/[\w.-]+\.png)", text)):
            if (LB_DIR / name).exists():
                assert name in parsed.imgs, f"{md.name} names {name} but does not show it"
    index = _Counter()
    index.feed((site / "index.html").read_text(encoding="utf-8"))
    assert sorted(index.imgs) == sorted(f"plots/{p.name}" for p in (LB_DIR / "plots").glob("*.png"))


def _parsed(site, page: str) -> _Counter:
    c = _Counter()
    c.feed((site / page).read_text(encoding="utf-8"))
    return c


@pytest.mark.skipif(not (LB_DIR / GALLERY_MANIFEST).exists(), reason="no gallery published under leaderboards/")
def test_gallery_shows_every_generator_beside_the_ground_truth(site):
    manifest = json.loads((LB_DIR / GALLERY_MANIFEST).read_text(encoding="utf-8"))
    page = _parsed(site, "gallery.html")
    for kind, key in (("captions", "caption"), ("actions", "action")):
        generators = {s["method"] for row in manifest[kind] for s in row["samples"]}
        assert generators, f"the published gallery has no {kind} row with a generator"
        for row in manifest[kind]:
            assert row["ground_truth"] in page.imgs and f"{row[key]}{row['frames']} frames" in page.cells
            assert {s["method"] for s in row["samples"]} == generators, f"{row[key]}: a method is missing"
            for s in row["samples"]:
                assert s["gif"] in page.imgs
    for p in manifest["pose"]:
        assert p["images"] and all(i in page.imgs for i in p["images"]), p["method"]
    # every cell links a published record of its own run (the one exported, or its republished successor),
    # in page order: the caption rows, the action rows, the pose rows
    linked = [h for h in page.links if h.startswith("results/")]
    cells = [s for kind in ("captions", "actions") for row in manifest[kind] for s in row["samples"]] + manifest["pose"]
    assert len(linked) == len(cells)
    for href, cell in zip(linked, cells):
        rec = json.loads((site / href).read_text(encoding="utf-8"))
        assert [rec[k] for k in ("method", "dataset", "protocol", "variant")] == \
            [cell[k] for k in ("method", "dataset", "protocol", "variant")], href
    for src in page.imgs:
        assert src.endswith((".gif", ".png")) and (site / src).stat().st_size > 0, src
    for href in (h for h in page.links if h.startswith("results/")):
        assert (site / href).is_file(), href


def test_each_method_page_shows_its_published_training_curves(site):
    published = sorted(p.stem for p in (LB_DIR / "curves").glob("*.png"))
    shown = set()
    for paper in load_papers():
        page = _parsed(site, f"{paper.leaderboard}.html")
        for m in paper.methods:
            if m in published:
                assert f"curves/{m}.png" in page.imgs, f"{paper.leaderboard}.html lacks {m}'s curves"
                shown.add(m)
    pose_and_others = set(published) - shown
    for m in pose_and_others:  # a method with no paper page of its own: its curves are on its own page if any
        if (site / f"{m}.html").exists():
            assert f"curves/{m}.png" in _parsed(site, f"{m}.html").imgs


def test_sensitivity_plots_are_embedded(site):
    plots = sorted(f"sensitivity/{p.name}" for p in (LB_DIR / "sensitivity").glob("*.png"))
    if not plots or not (LB_DIR / "sensitivity.md").exists():
        pytest.skip("no sensitivity plots published")
    assert set(plots) <= set(_parsed(site, "sensitivity.html").imgs)


def test_gallery_strings_are_escaped_and_missing_records_are_not_linked(tmp_path):
    src = tmp_path / "lb"
    (src / "gallery").mkdir(parents=True)
    (src / "x.md").write_text("# x\n", encoding="utf-8")
    (src / "gallery" / "gt_0.gif").write_bytes(b"GIF89a")
    (src / "gallery" / "m_0.gif").write_bytes(b"GIF89a")
    (src / "gallery" / "gallery.json").write_text(json.dumps({
        "captions": [{"caption": "<script>alert(1)</script>", "frames": 40, "ground_truth": "gallery/gt_0.gif",
                      "samples": [{"method": "m", "gif": "gallery/m_0.gif", "record": "absent.json", "commit": "c0"}]}],
        "pose": [], "curves": {}}), encoding="utf-8")
    build_site(tmp_path / "out", src)
    page = (tmp_path / "out" / "gallery.html").read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "results/absent.json" not in page and "absent.json" in page  # named, not a broken link
    assert "gallery.html" in (tmp_path / "out" / "index.html").read_text(encoding="utf-8")


def test_the_action_row_shows_each_generator_beside_the_ground_truth(tmp_path):
    src = tmp_path / "lb"
    (src / "gallery").mkdir(parents=True)
    (src / "results").mkdir()
    (src / "x.md").write_text("# x\n", encoding="utf-8")
    key = {"dataset": "synth_action", "protocol": "action2motion", "variant": ""}
    samples = []
    for m in ("b_gen", "a_gen"):
        (src / "gallery" / f"{m}_action_0.gif").write_bytes(b"GIF89a")
        (src / "results" / f"{m}.json").write_text(json.dumps({**key, "method": m}))
        samples.append({**key, "method": m, "gif": f"gallery/{m}_action_0.gif", "record": f"{m}.json", "commit": "c1"})
    (src / "gallery" / "gt_action_0.gif").write_bytes(b"GIF89a")
    (src / "gallery" / "gallery.json").write_text(json.dumps({"captions": [], "pose": [], "curves": {}, "actions": [
        {"action": "<b>jump</b>", "label": 0, "frames": 40, "ground_truth": "gallery/gt_action_0.gif",
         "samples": samples}]}))
    build_site(tmp_path / "out", src)
    html_text = (tmp_path / "out" / "gallery.html").read_text(encoding="utf-8")
    assert "Action to motion" in html_text and "<b>jump</b>" not in html_text and "&lt;b&gt;jump" in html_text
    page = _parsed(tmp_path / "out", "gallery.html")
    # the action, the ground truth, then one column per generator in name order, each with its record
    assert page.imgs == ["gallery/gt_action_0.gif", "gallery/a_gen_action_0.gif", "gallery/b_gen_action_0.gif"]
    assert [h for h in page.links if h.startswith("results/")] == ["results/a_gen.json", "results/b_gen.json"]
    assert page.cells[:2] == ["action", "ground truth"] and "<b>jump</b>40 frames" in page.cells


def test_a_republished_record_is_linked_in_place_of_the_exported_one(tmp_path):
    """The gallery was exported with one record; the records were then republished (a new run, a new
    file name): the cell links the newest record of the same method, dataset, protocol and variant."""
    src = tmp_path / "lb"
    (src / "gallery").mkdir(parents=True)
    (src / "results").mkdir()
    (src / "x.md").write_text("# x\n", encoding="utf-8")
    (src / "gallery" / "m_0.png").write_bytes(b"\x89PNG")
    key = {"method": "m", "dataset": "d", "protocol": "coco_ap", "variant": "gt_boxes"}
    for started, name in (("2026-01-01T00:00:00Z", "old_other.json"), ("2026-02-01T00:00:00Z", "new.json"),
                          ("2026-03-01T00:00:00Z", "newer_det.json")):
        variant = "det_boxes" if "det" in name else "gt_boxes"
        (src / "results" / name).write_text(json.dumps({**key, "variant": variant, "started": started}))
    (src / "gallery" / "gallery.json").write_text(json.dumps({"captions": [], "curves": {}, "pose": [
        {**key, "images": ["gallery/m_0.png"], "record": "exported_then_replaced.json", "commit": "c0"}]}))
    build_site(tmp_path / "out", src)
    page = _parsed(tmp_path / "out", "gallery.html")
    assert [h for h in page.links if h.startswith("results/")] == ["results/new.json"]
    assert (tmp_path / "out" / "results" / "new.json").is_file()


def test_the_workflow_uploads_the_screenshot_folder():
    """The browser test writes its screenshot under $MOTIONREPRO_ARTIFACTS: the .ci/run step must set it
    and an upload step must carry that folder."""
    wf = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    steps = wf["jobs"]["cpu"]["steps"]
    run_step = next(s for s in steps if s.get("run", "").strip() == ".ci/run")
    folder = run_step.get("env", {}).get(ARTIFACTS_ENV) or wf["jobs"]["cpu"].get("env", {}).get(ARTIFACTS_ENV)
    assert folder, f"the .ci/run step does not set {ARTIFACTS_ENV}"
    rel = folder.replace("${{ github.workspace }}/", "")
    uploads = [s["with"]["path"] for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert any(rel.rstrip("/") in p.split() or f"{rel.rstrip('/')}/" in p.split() for p in uploads), uploads


def test_markup_in_markdown_is_escaped(tmp_path):
    src = tmp_path / "lb"
    src.mkdir()
    (src / "x.md").write_text("| a | b |\n|---|---|\n| <script>alert(1)</script> | 2 |\n", encoding="utf-8")
    build_site(tmp_path / "out", src)
    page = (tmp_path / "out" / "x.html").read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_no_markdown_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no leaderboard markdown"):
        build_site(tmp_path / "out", tmp_path)


PROBE = """<!DOCTYPE html><html><body><pre id="result">pending</pre><script>
const pages = %s; const out = {};
function check(i) {
  if (i >= pages.length) { document.getElementById('result').textContent = JSON.stringify(out); return; }
  const f = document.createElement('iframe'); f.src = pages[i];
  f.onload = () => setTimeout(() => {
    const d = f.contentDocument;
    out[pages[i]] = {tables: d.querySelectorAll('table').length,
                     rows: d.querySelectorAll('table tr').length,
                     images: [...d.images].map(im => [im.getAttribute('src'), im.complete && im.naturalWidth > 0])};
    check(i + 1);
  }, 200);
  document.body.appendChild(f);
}
check(0);
</script></body></html>"""



def _png_size(path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian: apt-get install chromium); "
                                             "the pages were still checked by the HTML parser test")
@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_pages_render_in_headless_chromium(site, tmp_path):
    pages = sorted(p.name for p in site.glob("*.html"))
    (site / "_probe.html").write_text(PROBE % json.dumps(pages), encoding="utf-8")
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    shot_dir = Path(os.environ.get(ARTIFACTS_ENV) or tmp_path / "artifacts")
    shot_dir.mkdir(parents=True, exist_ok=True)
    shot = shot_dir / "gallery.png"
    try:
        res = subprocess.run(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=20000",
             "--dump-dom", f"{base}/_probe.html"],
            capture_output=True, text=True, timeout=120)
        if (site / "gallery.html").exists():
            shot.unlink(missing_ok=True)
            snap = subprocess.run(
                [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile2'}", "--virtual-time-budget=10000",
                 "--window-size=1400,1600", f"--screenshot={shot}", f"{base}/gallery.html"],
                capture_output=True, text=True, timeout=120)
            assert shot.is_file(), f"no screenshot of the gallery: {snap.stderr[-2000:]}"
            assert _png_size(shot) == (1400, 1600)
    finally:
        server.shutdown()
    m = re.search(r'<pre id="result">(.*?)</pre>', res.stdout, re.S)
    assert m and m.group(1) != "pending", f"Chromium did not finish the probe: {res.stderr[-2000:]}"
    import html as _html

    seen = json.loads(_html.unescape(m.group(1)))
    assert sorted(seen) == pages
    for md in sorted(LB_DIR.glob("*.md")):
        got = seen[f"{md.stem}.html"]
        assert got["tables"] == markdown_tables(md.read_text(encoding="utf-8")), md.name
        assert got["rows"] >= 2 * got["tables"]
    for page, got in seen.items():
        for src, ok in got["images"]:
            assert ok, f"{page}: image {src} did not load"
    assert sum(len(g["images"]) for g in seen.values()) >= len(list((LB_DIR / "plots").glob("*.png")))
    if "gallery.html" in seen:  # every GIF and overlay of the gallery decoded (naturalWidth > 0, checked above)
        manifest = json.loads((LB_DIR / GALLERY_MANIFEST).read_text(encoding="utf-8"))
        rows = manifest["captions"] + manifest.get("actions", [])
        wanted = {r["ground_truth"] for r in rows} | {s["gif"] for r in rows for s in r["samples"]} | {
            i for p in manifest["pose"] for i in p["images"]}
        assert wanted <= {src for src, _ in seen["gallery.html"]["images"]}
