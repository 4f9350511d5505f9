"""A screenshot of one page of the site, taken by headless Chromium, for the README.

``python -m leaderboards.screenshot --out leaderboards/screenshots/gallery.png`` builds the site
from ``leaderboards/`` (the published records, gallery and curves a demo exported) into a temporary
folder, serves it on a local port (the GIFs load over HTTP as a reader's browser would) and saves
what Chromium draws of ``gallery.html``. The README shows that picture, so it is regenerated from
the demo's outputs, never drawn by hand. Chromium is Debian's ``chromium`` (the page-rendering
test uses the same one); without it the command stops with exit 2 and says so.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from evaluators.core.io import atomic_write_bytes
from leaderboards.make_tables import LB_DIR
from leaderboards.site import build_site

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars")
SIZE = (1400, 2340)  # ours: wide enough for the gallery's four columns, tall enough for its three captions, three actions and the pose rows
VIRTUAL_TIME_MS = 10000  # ours: Chromium's virtual clock, long enough for every GIF to decode


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the site without a log line per request."""

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


def find_chromium() -> str | None:
    """Path of a Chromium executable on ``PATH``, or None."""
    return next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                             shutil.which("google-chrome")) if p), None)


def screenshot(page: str, out: Path, source: Path = LB_DIR, size: tuple[int, int] = SIZE,
               chromium: str | None = None) -> Path:
    """Build the site from ``source``, draw ``page`` (e.g. ``gallery.html``) at ``size`` into ``out`` (PNG)."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium found on PATH (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="motionrepro-shot-") as tmp:
        site = Path(tmp) / "site"
        build_site(site, source)
        if not (site / page).is_file():
            raise FileNotFoundError(f"the site built from {source} has no {page}")
        handler = functools.partial(QuietHandler, directory=str(site))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        shot = Path(tmp) / "shot.png"
        try:
            res = subprocess.run(
                [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={Path(tmp) / 'profile'}",
                 f"--virtual-time-budget={VIRTUAL_TIME_MS}", f"--window-size={size[0]},{size[1]}",
                 f"--screenshot={shot}", f"http://127.0.0.1:{server.server_address[1]}/{page}"],
                capture_output=True, text=True, timeout=180)
        finally:
            server.shutdown()
            server.server_close()
        if not shot.is_file():
            raise RuntimeError(f"Chromium wrote no screenshot of {page}: {res.stderr[-1000:]}")
        atomic_write_bytes(out, shot.read_bytes())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m leaderboards.screenshot", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="PNG file to write")
    ap.add_argument("--page", default="gallery.html", help="page of the site to draw (default: gallery.html)")
    ap.add_argument("--source", type=Path, default=LB_DIR, help="leaderboards folder (default: leaderboards/)")
    args = ap.parse_args(argv)
    if args.out.suffix.lower() != ".png":
        print(f"error: --out {args.out}: the screenshot is a PNG, name it *.png", file=sys.stderr)
        return 2
    try:
        screenshot(args.page, args.out, args.source)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
