"""A person types text on the live page, clicks a token and reads its features (headless Debian chromium)."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live_site(live_bundle, tmp_path_factory):
    from tests.browser.conftest import CHROMIUM, LiveServer

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium to run browser tests")
    from app.config import Settings
    from app.http.app import create_app
    from tests.live.factories import seed_sources

    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("live-browser"), load_model=False), bundle=live_bundle)
    seed_sources(app.state.engine, live_bundle, str(live_bundle.model_dir))
    with LiveServer(app) as server:
        yield server


@pytest.fixture
def page():
    from tests.browser.conftest import launch_chromium, watch_csp

    with launch_chromium() as browser:
        context = browser.new_context()
        violations = watch_csp(context)
        yield context.new_page()
    assert violations == [], "the live page broke its Content-Security-Policy"


def test_type_text_click_a_token_read_its_features(live_site, page):
    from playwright.sync_api import expect

    page.goto(f"{live_site.url}/sources/tiny-l1/live")
    page.fill("#live-text", "The quick brown fox jumps.")
    page.click("#live-form button[name=run]")
    tokens = page.locator(".live-tokens button.tok")
    tokens.first.wait_for()
    assert tokens.count() > 4
    assert page.locator("#ranked-features tbody tr").count() > 0

    third = tokens.nth(3)
    label = third.inner_text()
    third.click()
    # expect(), not wait_for_function: polling a JS string is eval, which the page's CSP refuses
    expect(page.locator("#token-features h2")).to_have_text(re.compile(r"^\s*Token 3\b"))
    assert third.get_attribute("aria-pressed") == "true"
    assert page.locator("#token-features h2 code").inner_text() == label
    rows = page.locator("#token-features tbody tr")
    assert rows.count() > 0
    first_link = rows.first.locator("a")
    assert first_link.get_attribute("href").startswith("/sources/tiny-l1/features/")
    # The URL never changed: htmx swapped the blocks in place.
    assert page.url.endswith("/sources/tiny-l1/live")


def test_feature_page_widget_shows_the_servers_error_message(live_site, page):
    from playwright.sync_api import expect

    from app.config import Settings

    page.goto(f"{live_site.url}/sources/tiny-l1/features/3")
    page.fill("#feature-test-text", "x" * (Settings.model_fields["max_live_chars"].default + 1))
    page.click(".feature-test-form button[type=submit]")
    expect(page.locator("#feature-test-result")).to_contain_text("limit")
    assert page.url.endswith("/sources/tiny-l1/features/3")  # swapped in place, 413 and all
