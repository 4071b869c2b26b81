"""Every kind of page under the real Content-Security-Policy (style-src 'self', no inline styles) in headless
chromium: no violation is reported, htmx injects no <style>, and no request leaves the server's host."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import httpx
import pytest

from tests.browser.conftest import LiveServer, launch_chromium, log_in, watch_csp

pytestmark = pytest.mark.browser

USER = "csp-checker"


@pytest.fixture(scope="module")
def site(browse_database, tmp_path_factory):
    """A live server over this module's copy of the browse database, with a labeler, one human label and one
    machine draft waiting for review (written through the API)."""
    from app.config import Settings
    from app.http.app import create_app
    from tests.labels.factories import make_account

    url, source = browse_database
    app = create_app(Settings(database_url=url, data_dir=tmp_path_factory.mktemp("csp-data"), load_model=False,
                              secret_key="csp-browser-test-secret-of-32-plus-chars"))
    with app.state.sessionmaker() as session:
        _, key = make_account(session, USER, role="labeler")
    with LiveServer(app) as server:
        api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"})
        feature = api.get(f"/api/v1/sources/{quote(source, safe='')}/features",
                          params={"sort": "max", "order": "desc", "per_page": 1}).json()["data"][0]["index"]
        labels = f"/api/v1/sources/{quote(source, safe='')}/features/{feature}/labels"
        label = api.post(labels, json={"text": "fires on <b>dates</b>", "method": "human"})
        draft = api.post(labels, json={"text": "machine guess", "method": "auto:test"})
        assert label.status_code == 201 and draft.status_code == 201, (label.text, draft.text)
        api.close()
        server.source, server.feature, server.label_id = source, feature, label.json()["id"]
        yield server


def test_pages_keep_to_the_csp_and_the_server_host(site):
    from tests.labels.factories import PASSWORD

    src = quote(site.source, safe="")
    pages = [("/", ".source-card"), (f"/sources/{src}", "table.features tbody tr"),
             (f"/sources/{src}/features/{site.feature}", ".ex span.pk"), (f"/sources/{src}/live", "#live-form"),
             ("/steer", "#steer-form"), (f"/labels/{site.label_id}", "h1.label-title"),
             (f"/sources/{src}/review", "article.al-draft"),
             (f"/sources/{src}/features/{site.feature}/labeling", "#label-form")]
    origin = urlsplit(site.url).netloc
    with launch_chromium() as browser:
        context = browser.new_context()
        violations = watch_csp(context)
        # chromium's own report of a refused inline style or script, in case the page's listener missed it
        context.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        elsewhere: list[str] = []
        context.on("request", lambda r: elsewhere.append(r.url) if urlsplit(r.url).netloc != origin else None)
        page = context.new_page()
        page.set_default_timeout(15_000)
        log_in(page, site.url, USER, PASSWORD)
        for path, ready in pages:
            page.goto(site.url + path, wait_until="networkidle")
            page.wait_for_selector(ready)
            state = page.evaluate("""() => ({
                styles: document.querySelectorAll("style").length,
                htmx: Boolean(window.htmx) && window.htmx.config.includeIndicatorStyles === false,
                sheet: [...document.styleSheets].some(s => s.href && s.href.endsWith("/static/css/app.css")
                                                           && s.cssRules.length > 0),
                bars: document.querySelectorAll(".fb-account-bar .fb-me").length})""")
            assert state == {"styles": 0, "htmx": True, "sheet": True, "bars": 1}, (path, state)
        context.close()
    assert violations == [], "a page broke its Content-Security-Policy"
    assert elsewhere == [], "a page asked another host"


def test_activation_shading_comes_from_the_stylesheet(site):
    """The shade classes really shade: the feature page's peak token gets its background from app.css."""
    with launch_chromium() as browser:
        page = browser.new_page()
        page.goto(f"{site.url}/sources/{quote(site.source, safe='')}/features/{site.feature}")
        peak = page.locator(".example-group[data-kind=top] .ex span.pk").first
        shade = peak.evaluate("el => [getComputedStyle(el).getPropertyValue('--a').trim(), "
                              "getComputedStyle(el).backgroundColor]")
        assert shade == ["1", "rgb(255, 110, 30)"], shade
