"""The browse pages in a real browser: hover values, context toggle, neighbour links, table paging, screenshots."""

from __future__ import annotations

import base64
import re

import httpx
import pytest

pytestmark = pytest.mark.browser

VARIANCE_JS = """async (b64) => {
  const img = new Image();
  img.src = "data:image/png;base64," + b64;
  await img.decode();
  const c = document.createElement("canvas");
  c.width = img.width; c.height = img.height;
  const ctx = c.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  let n = 0, sum = 0, sq = 0;
  for (let i = 0; i < d.length; i += 16) { const g = (d[i] + d[i + 1] + d[i + 2]) / 3; n++; sum += g; sq += g * g; }
  const mean = sum / n;
  return {variance: sq / n - mean * mean, width: c.width, height: c.height};
}"""


def _live_feature(server, source: str) -> int:
    """A feature with examples: the first row of the table sorted by max activation."""
    rows = httpx.get(f"{server.url}/api/v1/sources/{source}/features", params={"sort": "max", "order": "desc",
                                                                           "per_page": 1}).json()["data"]
    return rows[0]["index"]


def _assert_not_blank(page, png: bytes) -> None:
    scratch = page.context.new_page()  # about:blank: the app's Content-Security-Policy refuses data: images
    try:
        stats = scratch.evaluate(VARIANCE_JS, base64.b64encode(png).decode())
    finally:
        scratch.close()
    assert stats["width"] > 100 and stats["height"] > 100
    assert stats["variance"] > 50, f"screenshot looks blank: {stats}"


def test_screenshots_of_home_source_and_feature(page, live_server, source_name, test_output_dir):
    index = _live_feature(live_server, source_name)
    for name, path, ready in [
        ("home", "/", ".source-card"),
        ("source", f"/sources/{source_name}", "table.features tbody tr"),
        ("feature", f"/sources/{source_name}/features/{index}", ".example .ex span.pk"),
    ]:
        page.goto(live_server.url + path)
        page.wait_for_selector(ready)
        png = page.screenshot(full_page=True, path=str(test_output_dir / f"browse-{name}.png"))
        _assert_not_blank(page, png)


def test_hover_and_focus_show_exact_token_value(page, live_server, source_name):
    index = _live_feature(live_server, source_name)
    page.goto(f"{live_server.url}/sources/{source_name}/features/{index}")
    peak = page.locator(".example-group[data-kind=top] .ex span.pk").first
    expected = peak.get_attribute("data-v")
    peak.hover()
    tip = page.locator("#tok-tip")
    tip.wait_for(state="visible")
    assert tip.locator(".tip-value").inner_text() == expected
    assert float(expected) > 0

    page.mouse.move(0, 0)
    peak.focus()
    tip.wait_for(state="visible")
    assert tip.locator(".tip-value").inner_text() == expected
    page.keyboard.press("ArrowLeft")
    focused_v = page.evaluate("document.activeElement.getAttribute('data-v') || '0'")
    assert tip.locator(".tip-value").inner_text() == focused_v


def test_context_toggle_swaps_examples_in_place(page, live_server, source_name):
    index = _live_feature(live_server, source_name)
    page.goto(f"{live_server.url}/sources/{source_name}/features/{index}")
    page.evaluate("window.__marker = 1")  # survives only if the page is not reloaded
    wide = page.locator(".example").first.locator(".ex > span").count()
    page.click(".context-toggle a[data-context='5']")
    page.wait_for_selector("#examples[data-context='5']")
    assert page.evaluate("window.__marker") == 1
    assert re.search(r"[?&]context=5", page.url)
    narrow = page.locator(".example").first.locator(".ex > span").count()
    assert narrow <= 11 and narrow <= wide
    page.click(".context-toggle a[data-context='full']")
    page.wait_for_selector("#examples[data-context='full']")
    assert page.locator(".example").first.locator(".ex > span").count() >= wide


def test_follow_a_neighbour_link(page, live_server, source_name):
    index = _live_feature(live_server, source_name)
    page.goto(f"{live_server.url}/sources/{source_name}/features/{index}")
    link = page.locator("a.neighbour").first
    target = link.inner_text()
    link.click()
    page.wait_for_url(re.compile(rf"/features/{target}$"))
    assert page.locator("h1").inner_text().startswith(f"Feature {target}")


def test_page_and_sort_the_feature_table(page, live_server, source_name):
    page.goto(f"{live_server.url}/sources/{source_name}")
    page.evaluate("window.__marker = 1")
    first_page = page.locator("table.features tbody tr").first.get_attribute("data-index")
    page.click(".pager a[rel=next]")
    page.wait_for_url(re.compile(r"page=2"))
    page.wait_for_selector(".pager span:has-text('page 2 /')")
    assert page.evaluate("window.__marker") == 1
    assert page.locator("table.features tbody tr").first.get_attribute("data-index") != first_page

    page.select_option(".table-controls select[name=sort]", "max")
    page.wait_for_selector(".table-controls select[name=sort] option[value=max][selected]", state="attached")
    page.select_option(".table-controls select[name=order]", "desc")
    page.wait_for_url(re.compile(r"order=desc"))
    page.wait_for_selector(".table-controls select[name=order] option[value=desc][selected]", state="attached")
    maxima = [float(t) for t in page.locator("table.features tbody tr td:nth-child(3)").all_inner_texts()]
    assert maxima == sorted(maxima, reverse=True)
