"""The built book as a reader sees it, in headless Chromium with no network."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
# Every page of the table of contents: executed chapters and Markdown pages alike.
PAGES = [f"{TOC['root']}.html"] + [
    f"{entry['file']}.html" for part in TOC["parts"] for entry in part["chapters"]
]


def _prose_has_math(page: str) -> bool:
    """Markdown pages, and the prose (comment lines) of percent-format chapters, with TeX."""
    source = ROOT / page.replace(".html", ".md")
    if source.is_file():
        return "$" in source.read_text()
    lines = (ROOT / page.replace(".html", ".py")).read_text().splitlines()
    return any(line.startswith("#") and "$" in line for line in lines)


MATH_PAGES = {page for page in PAGES if _prose_has_math(page)}


def test_bibliography_lists_the_cited_works(browser, base_url):
    tab = browser.new_page()
    tab.goto(base_url + "book/bibliography.html", wait_until="networkidle")
    text = tab.inner_text("main")
    tab.close()
    for author in ("Chaudhari", "Jacot", "Nedi", "Sayed", "Novak"):
        assert author in text, f"bibliography does not list {author}"


def test_every_chapter_has_a_page(html_dir):
    missing = [p for p in PAGES if not (html_dir / p).is_file()]
    assert not missing, f"pages not built: {missing}"
    assert (html_dir / "index.html").is_file()


def test_no_page_references_an_off_site_asset(html_dir):
    offenders = []
    for page in html_dir.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        for marker in ('src="http', "src='http", 'href="http', "@import url(http"):
            for chunk in text.split(marker)[1:]:
                tag_start = text.rfind("<", 0, text.find(marker + chunk[:40]))
                tag = text[tag_start : tag_start + 12]
                if tag.startswith(("<script", "<link", "<img", "<iframe")):
                    offenders.append(f"{page.name}: {tag}{marker}{chunk[:60]}")
    assert not offenders, offenders[:5]


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_offline(browser, base_url, page):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    errors, foreign, failed = [], [], []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.on(
        "request",
        lambda r: (
            foreign.append(r.url)
            if not r.url.startswith(base_url) and not r.url.startswith("data:")
            else None
        ),
    )
    tab.on("requestfailed", lambda r: failed.append(r.url))
    tab.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    tab.goto(base_url + page, wait_until="networkidle")
    has_math = tab.evaluate("() => typeof MathJax !== 'undefined'")
    if has_math:
        tab.evaluate("() => MathJax.startup.promise")
    math = tab.locator("mjx-container").count()
    merrors = tab.locator("mjx-merror").count()
    broken = tab.evaluate(
        "() => [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))"
        ".map(i => i.src)"
    )
    overflowing = tab.evaluate(  # a parameters cell wraps rather than scrolls
        "() => [...document.querySelectorAll('.tag_parameters pre')]"
        ".filter(p => p.scrollWidth > p.clientWidth + 1).length"
    )
    context.close()
    assert not errors, f"console errors on {page}: {errors}"
    assert not foreign, f"{page} requested off-site resources: {foreign}"
    assert not failed, f"{page} had failed requests: {failed}"
    assert not broken, f"{page} has images that did not load: {broken}"
    assert merrors == 0, f"{page} has {merrors} MathJax errors"
    assert overflowing == 0, f"{page}: {overflowing} parameters cells scroll sideways"
    if page in MATH_PAGES:
        assert has_math and math > 0, f"{page}: no typeset math (MathJax did not run)"


def test_the_report_shows_claims_by_kind_with_their_rivals_inside_the_page(browser, base_url):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.goto(base_url + "book/15_report.html", wait_until="networkidle")
    text = tab.locator("article").inner_text()
    overflowing = tab.evaluate(
        "() => { const right = document.querySelector('article').getBoundingClientRect().right;"
        " return [...document.querySelectorAll('article table')]"
        ".filter(t => t.getBoundingClientRect().right > right + 1).length; }"
    )
    tables = tab.locator("article table").count()
    context.close()
    for kind in ("Exact", "Theorem", "Empirical", "Observation"):
        assert f"{kind} (" in text, f"the report has no group of {kind.lower()} claims"
    assert tables == 4
    assert "margin [95% interval]" in text, "the empirical claims show no margin over a rival"
    assert "fails" in text, "no claim shows its failing control"
    assert overflowing == 0, f"{overflowing} claim tables run past the article column"
