"""``make docs-check``: render pages of the built site in headless Chromium, check the math, save screenshots.

Serves SITE (``make docs`` writes ``site/``) on a local port, as a reader's browser would load it, and for each page
of :data:`PAGES` saves a full-height screenshot ``OUT/<name>.png`` to look at (navigation, code blocks, tables).
The method pages' DOMs, after their scripts ran, must hold MathJax's typeset equations (``mjx-container``) and
no MathJax error element (``mjx-merror``): the equations render from the site's own copy of MathJax, nothing from a CDN.

    .venv/bin/python scripts/docs_check.py [SITE] [OUT]         # defaults: site build/docs-check
"""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

#: (screenshot name, page, window height in pixels)
PAGES = [
    ("index", "index.html", 2200),
    ("method-dr", "methods/dr.html", 3200),
    ("api", "reference/api.html", 2600),
]
MATH_PAGES = ["methods/dr.html", "methods/tcae.html", "methods/fabnet.html", "methods/baselines.html"]
WIDTH = 1280
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--virtual-time-budget=15000"]  # let MathJax typeset before the capture


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        sys.exit("error: no chromium on PATH (Debian: apt-get install chromium; `make docs-check` installs it)")
    return exe


def run(exe: str, args: list[str]) -> str:
    with tempfile.TemporaryDirectory() as profile:
        res = subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                             timeout=180)
    if res.returncode != 0:
        sys.exit(f"error: chromium failed ({res.returncode}): {res.stderr.strip().splitlines()[-1:]}")
    return res.stdout


def main() -> None:
    site = Path(sys.argv[1] if len(sys.argv) > 1 else "site").resolve()
    out = Path(sys.argv[2] if len(sys.argv) > 2 else "build/docs-check")
    if not (site / "index.html").is_file():
        sys.exit(f"error: {site} holds no built site (make docs)")
    out.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    exe = chromium()
    try:
        for page in MATH_PAGES:
            dom = run(exe, ["--dump-dom", f"{base}/{page}"])
            typeset, errors = dom.count("<mjx-container"), dom.count("<mjx-merror")
            print(f"{page}: {typeset} equations typeset by MathJax, {errors} MathJax errors")
            if typeset == 0 or errors:
                sys.exit(f"error: the equations of {page} did not render")
        for name, page, height in PAGES:
            png = out / f"{name}.png"
            run(exe, [f"--window-size={WIDTH},{height}", f"--screenshot={png.resolve()}", f"{base}/{page}"])
            print(f"screenshot: {png}  ({page})")
    finally:
        server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # the base class names it `format`
        pass


if __name__ == "__main__":
    main()
