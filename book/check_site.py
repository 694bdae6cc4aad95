"""Check the built site in a real browser: pages, equations, images, links, chapter structure.

Usage (after ``make book``, or ``book/build.py --no-execute``)::

    .venv/bin/python book/check_site.py _build/html                 # prints one line per page
    .venv/bin/python book/check_site.py _build/html --screenshots _build/screenshots

The site is served from ``127.0.0.1`` by a throw-away HTTP server (the way a reader's browser
fetches it, fonts included) and opened in headless Chromium (Debian's ``chromium`` package),
driven by Playwright with the browser's network limited to that server: a page that still asks a
CDN for MathJax shows up as a failed request. For every HTML page it checks that

* the page loads (HTTP 200, no uncaught JavaScript error, no failed request);
* every equation is typeset by MathJax with zero MathJax errors (no raw ``\\(`` left behind);
* every image has loaded (non-zero natural width);
* every internal link points to a file of the site and, when it has one, to an existing anchor
  (checked on the HTML itself, without the browser);
* each paper chapter shows its six sections (claims, derivation, gradient audit, mechanism,
  training, evidence), in that order;

and saves a full-page screenshot of each chapter when ``--screenshots`` is given.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import shutil
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

#: The five paper chapters and the six sections each must show, as words their headings contain.
PAPER_CHAPTERS = ("smc_ecd", "adaptive_margin", "support_neighbor", "view_adaptation", "joint_am_triplet")
SECTIONS = (
    ("claims",),
    ("derivation",),
    ("gradient",),
    ("mechanism",),
    ("training",),
    ("evidence", "results"),
)

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

# Runs in the page: wait for MathJax 2's queue to drain, then report what a reader would see.
_INSPECT = """
async () => {
  if (window.MathJax && MathJax.Hub) {
    await new Promise(resolve => MathJax.Hub.Queue(resolve));
  }
  // Sphinx/MyST mark their math with `math notranslate`; MathJax's own output also uses `.math`.
  const maths = Array.from(document.querySelectorAll('span.math.notranslate, div.math.notranslate'));
  const raw = maths.filter(el => !el.querySelector('.MathJax, .MathJax_Display, .MathJax_CHTML, mjx-container'))
                   .map(el => el.textContent.trim().slice(0, 80));
  const errors = Array.from(document.querySelectorAll('.MathJax_Error, merror, mjx-merror'))
                      .map(el => el.textContent.trim().slice(0, 80));
  const images = Array.from(document.images)
                      .filter(img => !(img.complete && img.naturalWidth > 0))
                      .map(img => img.getAttribute('src'));
  const headings = Array.from(document.querySelectorAll('main h2, article h2, .bd-article h2'))
                        .map(h => h.textContent.replace(/[#¶]/g, '').trim());
  return {maths: maths.length, raw, errors, images, headings,
          mathjax: !!(window.MathJax && MathJax.Hub)};
}
"""


@dataclass
class PageReport:
    page: str
    maths: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def find_chromium() -> str | None:
    """The Chromium executable, or None (the test then skips)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return next((c for c in CHROMIUM_CANDIDATES if Path(c).exists()), None)


def html_pages(site: Path) -> list[Path]:
    """Every page of the site (Sphinx's own search, index and source pages excluded)."""
    skip = {"search.html", "genindex.html", "py-modindex.html"}
    return sorted(p for p in site.rglob("*.html")
                  if p.name not in skip and "_static" not in p.parts and "_sources" not in p.parts
                  and "_modules" not in p.parts)


def broken_links(site: Path, pages: list[Path]) -> dict[str, list[str]]:
    """Internal links whose file or anchor does not exist, per page (HTML only, no browser)."""
    from bs4 import BeautifulSoup

    anchors: dict[Path, set[str]] = {}

    def ids_of(path: Path) -> set[str]:
        if path not in anchors:
            soup = BeautifulSoup(path.read_text(encoding="utf-8", errors="replace"), "html.parser")
            anchors[path] = {el["id"] for el in soup.find_all(id=True)} | {
                el["name"] for el in soup.find_all("a", attrs={"name": True})}
        return anchors[path]

    out: dict[str, list[str]] = {}
    for page in pages:
        soup = BeautifulSoup(page.read_text(encoding="utf-8", errors="replace"), "html.parser")
        bad = []
        for a in soup.find_all("a", href=True):
            href = a["href"]
            parsed = urlparse(href)
            if parsed.scheme or href.startswith(("mailto:", "javascript:", "//")):
                continue
            target = page if not parsed.path else (page.parent / unquote(parsed.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                bad.append(f"{href} (no such file)")
            elif parsed.fragment and target.suffix == ".html" and unquote(parsed.fragment) not in ids_of(target):
                bad.append(f"{href} (no such anchor)")
        if bad:
            out[str(page.relative_to(site))] = sorted(set(bad))
    return out


def _redirects(path: Path) -> bool:
    head = path.read_text(encoding="utf-8", errors="replace")[:2000].lower()
    return 'http-equiv="refresh"' in head


def chapter_sections_problem(headings: list[str]) -> str | None:
    """None when the headings show the six sections in order, else what is missing."""
    lowered = [h.lower() for h in headings]
    position = -1
    for words in SECTIONS:
        hit = next((i for i, h in enumerate(lowered) if i > position and any(w in h for w in words)), None)
        if hit is None:
            return f"section '{'/'.join(words)}' missing or out of order (h2 headings: {headings})"
        position = hit
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the test output clean
        pass


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def check_site(site: str | Path, *, screenshots: str | Path | None = None, chromium: str | None = None,
               timeout_ms: int = 120_000) -> list[PageReport]:
    """Open every page of ``site`` in headless Chromium; one :class:`PageReport` per page."""
    from playwright.sync_api import sync_playwright

    site = Path(site).resolve()
    pages = html_pages(site)
    if not pages:
        raise SystemExit(f"check_site: no HTML pages under {site}; build the site first (make book).")
    chromium = chromium or find_chromium()
    if chromium is None:
        raise SystemExit("check_site: Chromium not found; install Debian's `chromium` package.")
    links = broken_links(site, pages)
    shots = Path(screenshots) if screenshots else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    server, base = serve(site)
    reports = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            # Nothing but the local server: a CDN request would fail here as it does offline.
            context.route(re.compile(r"^(?!" + re.escape(base) + r"|about:|data:|blob:).*"),
                          lambda route: route.abort())
            for path in pages:
                rel = path.relative_to(site).as_posix()
                report = PageReport(rel, problems=[f"broken link: {b}" for b in links.get(rel, [])])
                page = context.new_page()
                failed: list[str] = []
                page.on("pageerror", lambda exc, f=failed: f.append(f"JavaScript error: {exc}"))
                page.on("requestfailed", lambda req, f=failed: None if req.url.startswith(("about:", "data:"))
                        else f.append(f"failed request: {req.url}"))
                response = page.goto(urljoin(base, rel), wait_until="load", timeout=timeout_ms)
                if response is None or response.status != 200:
                    report.problems.append(f"HTTP {response.status if response else 'no response'}")
                page.set_default_timeout(timeout_ms)
                if _redirects(path):  # e.g. the root index.html: follow it, then inspect the target
                    page.wait_for_url(lambda url: url != urljoin(base, rel), timeout=timeout_ms)
                    page.wait_for_load_state("load")
                seen = page.evaluate(_INSPECT)
                report.maths = seen["maths"]
                if seen["maths"] and not seen["mathjax"]:
                    report.problems.append("MathJax did not load")
                report.problems += [f"untypeset equation: {t!r}" for t in seen["raw"][:5]]
                report.problems += [f"MathJax error: {t!r}" for t in seen["errors"][:5]]
                report.problems += [f"image did not load: {s}" for s in seen["images"]]
                report.problems += failed
                stem = Path(rel).stem
                if rel.startswith("notebooks/") and stem in PAPER_CHAPTERS:
                    problem = chapter_sections_problem(seen["headings"])
                    if problem:
                        report.problems.append(problem)
                    if shots:
                        page.screenshot(path=str(shots / f"{stem}.png"), full_page=True)
                page.close()
                reports.append(report)
            browser.close()
    finally:
        server.shutdown()
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", help="the built HTML folder (e.g. _build/html)")
    parser.add_argument("--screenshots", default=None, help="folder for a full-page PNG of each chapter")
    args = parser.parse_args(argv)
    reports = check_site(args.site, screenshots=args.screenshots)
    for r in reports:
        print(f"{'ok  ' if r.ok else 'FAIL'} {r.page:<48} {r.maths:5d} equations")
        for problem in r.problems:
            print(f"       - {problem}")
    bad = [r for r in reports if not r.ok]
    print(f"{len(reports) - len(bad)} passed, {len(bad)} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
