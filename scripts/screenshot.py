"""Screenshot built pages at a phone (390 px) and a desktop (1280 px) width, as a reader sees them.

Serves a built book over HTTP, opens each page in Debian's Chromium (Playwright drives it), and
saves full-page screenshots; with --open-folds the "Going deeper" blocks and dropdowns are
opened first. Prints, for each concept diagram, its width on screen and the size of its smallest
label in CSS pixels, so a diagram that would be hard to read on a phone shows up at once.

Usage: python scripts/screenshot.py _build/html chapters/attention [more pages] [--out /tmp/shots] [--open-folds]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

VIEWPORTS = {"phone": (390, 844), "desktop": (1280, 900)}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", type=Path, help="the built book's html folder")
    parser.add_argument("pages", nargs="+", help="pages without suffix, e.g. chapters/attention")
    parser.add_argument("--out", type=Path, default=Path("/tmp/llm-internals-shots"))
    parser.add_argument("--open-folds", action="store_true", help="open Going deeper blocks and dropdowns first")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(args.html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for page_name in args.pages:
            for label, (width, height) in VIEWPORTS.items():
                page = browser.new_page(viewport={"width": width, "height": height})
                page.goto(f"http://127.0.0.1:{server.server_port}/{page_name}.html", wait_until="networkidle")
                if args.open_folds:
                    page.evaluate("() => { document.querySelectorAll('details').forEach(d => { d.open = true; });"
                                  " document.querySelectorAll('.toggle-hidden').forEach(e => e.classList.remove('toggle-hidden')); }")
                page.wait_for_timeout(300)
                diagrams = page.evaluate("""() => [...document.querySelectorAll('img.diagram')].map(img => ({
                    alt: img.alt.slice(0, 60), shown: Math.round(img.getBoundingClientRect().width),
                    px: parseFloat(img.dataset.minFontPt) * 96 / 72 * img.getBoundingClientRect().width / img.naturalWidth}))""")
                target = args.out / f"{page_name.replace('/', '_')}-{label}.png"
                page.screenshot(path=target, full_page=True)
                print(f"{target}")
                for d in diagrams:
                    print(f"    diagram {d['shown']:4d} px wide, smallest label {d['px']:.1f} px: {d['alt']}")
                page.close()
        browser.close()
    server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
