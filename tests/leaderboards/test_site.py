"""The published leaderboard pages: every markdown table becomes an HTML table,
every plot a page names is shown and loads, checked by the stdlib HTML parser and, where a
browser is installed, by headless Chromium rendering the pages from a local HTTP server."""

from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import subprocess
import threading
from html.parser import HTMLParser

import pytest

from leaderboards.make_tables import LB_DIR
from leaderboards.site import build_site

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                             shutil.which("google-chrome")) if p), None)


class _Counter(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables, self.imgs, self.cells = 0, [], []
        self._cell = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables += 1
        elif tag == "img":
            self.imgs.append(dict(attrs)["src"])
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
        for name in set(re.findall(r"plots/([\w.-]+\.png)", text)):
            if (LB_DIR / "plots" / name).exists():
                assert f"plots/{name}" in parsed.imgs, f"{md.name} names plots/{name} but does not show it"
    index = _Counter()
    index.feed((site / "index.html").read_text(encoding="utf-8"))
    assert sorted(index.imgs) == sorted(f"plots/{p.name}" for p in (LB_DIR / "plots").glob("*.png"))


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


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (Debian: apt-get install chromium); "
                                             "the pages were still checked by the HTML parser test")
@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_pages_render_in_headless_chromium(site, tmp_path):
    pages = sorted(p.name for p in site.glob("*.html"))
    (site / "_probe.html").write_text(PROBE % json.dumps(pages), encoding="utf-8")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        res = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=20000", "--dump-dom",
             f"http://127.0.0.1:{server.server_address[1]}/_probe.html"],
            capture_output=True, text=True, timeout=120)
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
