"""The built site in a real browser (headless Chromium): pages load, every equation typesets
offline, images load, internal links resolve, each paper chapter shows its six sections.

The site is built from the committed notebooks (``book/build.py --no-execute``, the pages
``make book`` produces at default parameters) into ``$REID_SITE_BUILD`` when set (``make test``
sets ``_build/test-site``, and the chapter screenshots land in its ``screenshots/``), else into a
temporary folder. Skipped cleanly where Chromium or Playwright is absent.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book"))
import check_site  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if check_site.find_chromium() is None:
        pytest.skip("Chromium is not installed (Debian package `chromium`; .ci/run installs it)")
    pytest.importorskip("playwright.sync_api")
    build = Path(os.environ.get("REID_SITE_BUILD") or tmp_path_factory.mktemp("site"))
    # always rebuilt: a site left by older code must never pass for this one
    done = subprocess.run([sys.executable, str(ROOT / "book" / "build.py"), "--build", str(build), "--no-execute"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return build


@pytest.fixture(scope="module")
def reports(site):
    return check_site.check_site(site / "html", screenshots=site / "screenshots")


def test_every_page_passes_the_browser_checks(reports):
    failures = {r.page: r.problems for r in reports if not r.ok}
    assert not failures, "\n".join(f"{page}: {problems}" for page, problems in failures.items())


def test_equations_are_typeset_on_every_chapter(reports):
    maths = {Path(r.page).stem: r.maths for r in reports if r.page.startswith("notebooks/")}
    for chapter in check_site.PAPER_CHAPTERS:
        assert maths.get(chapter, 0) > 10, f"{chapter}: expected its derivation's equations, found {maths.get(chapter)}"


def test_a_screenshot_of_each_chapter(site, reports):
    for chapter in check_site.PAPER_CHAPTERS:
        shot = site / "screenshots" / f"{chapter}.png"
        assert shot.is_file() and shot.stat().st_size > 10_000


def test_the_checker_catches_what_it_claims_to(tmp_path):
    """A page that loads MathJax from a CDN, a missing image, a dead link: all reported."""
    if check_site.find_chromium() is None:
        pytest.skip("Chromium is not installed")
    pytest.importorskip("playwright.sync_api")
    (tmp_path / "index.html").write_text(
        '<html><head><script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script></head>'
        '<body><span class="math notranslate nohighlight">\\(x^2\\)</span>'
        '<img src="missing.png"><a href="nowhere.html">x</a><a href="#no-anchor">y</a></body></html>')
    [report] = check_site.check_site(tmp_path, timeout_ms=20_000)
    text = "\n".join(report.problems)
    assert "failed request: https://cdn.jsdelivr.net" in text
    assert "untypeset equation" in text and "image did not load" in text
    assert "nowhere.html (no such file)" in text and "#no-anchor (no such anchor)" in text


def test_chapter_section_rule():
    good = ["1. Claims", "2. Derivation", "3. Gradient audit", "4. Mechanism", "5. Training", "6. Evidence"]
    assert check_site.chapter_sections_problem(good) is None
    assert "gradient" in check_site.chapter_sections_problem(good[:2] + good[3:])
    assert check_site.chapter_sections_problem(list(reversed(good))) is not None
