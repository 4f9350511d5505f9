"""The README's gallery screenshot: drawn by headless Chromium from the built site, refused cleanly
when it cannot be."""

from __future__ import annotations

import struct

import pytest
from PIL import Image

from leaderboards import screenshot as shot_mod
from leaderboards.make_tables import LB_DIR


def _png_size(path) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk (the format's own header, not our code)."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_without_chromium_it_stops_with_the_reason(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(shot_mod, "find_chromium", lambda: None)
    out = tmp_path / "g.png"
    assert shot_mod.main(["--out", str(out)]) == 2
    assert "no Chromium" in capsys.readouterr().err
    assert not out.exists()


def test_a_name_that_is_not_png_is_refused_before_work(tmp_path, capsys):
    assert shot_mod.main(["--out", str(tmp_path / "g.jpg")]) == 2
    assert "--out" in capsys.readouterr().err


def test_an_unknown_page_names_it(tmp_path, capsys):
    if shot_mod.find_chromium() is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium)")
    assert shot_mod.main(["--out", str(tmp_path / "g.png"), "--page", "nope.html"]) == 2
    assert "nope.html" in capsys.readouterr().err


@pytest.mark.slow  # > 2 s (a browser): CI, not the --fast lane
def test_gallery_screenshot_is_a_drawn_page_of_the_stated_size(tmp_path):
    if shot_mod.find_chromium() is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium)")
    if not (LB_DIR / "gallery" / "gallery.json").is_file():
        pytest.skip("no published gallery in leaderboards/gallery")
    out = shot_mod.screenshot("gallery.html", tmp_path / "g.png", size=(800, 900))
    assert _png_size(out) == (800, 900)
    # a blank or error page has a handful of colours; a page of GIF frames and overlays has many
    colours = Image.open(out).convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 200, f"only {len(colours)} colours: nothing was drawn"
