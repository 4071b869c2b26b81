"""Two people in two browser contexts (headless Debian chromium via Playwright) label, vote, comment and see each
other's work on a live uvicorn server. Skipped with the reason when chromium or playwright is missing."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import LiveServer, launch_chromium, watch_csp

pytestmark = pytest.mark.browser


@pytest.fixture
def live_lab(lab):
    with LiveServer(lab.app) as server:
        lab.url = server.url
        yield lab


@pytest.fixture
def chromium():
    with launch_chromium() as browser:
        yield browser


def _register(browser, base: str, name: str, csp_violations: list[str]):
    context = browser.new_context()
    watch_csp(context, csp_violations)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base}/register?next=/account")
    page.fill('form.register input[name="username"]', name)
    page.fill('form.register input[name="password"]', "a long enough password")
    page.click('form.register button[type="submit"]')
    page.wait_for_url(f"{base}/account")
    return page


def test_two_people_label_vote_and_see_each_other(live_lab, chromium):
    from playwright.sync_api import expect

    base, labels_url = live_lab.url, f"{live_lab.url}{live_lab.feature_url(1)}/labels"
    csp_violations: list[str] = []
    alice, bob = _register(chromium, base, "alice", csp_violations), _register(chromium, base, "bob", csp_violations)

    alice.goto(labels_url)
    alice.fill('form.new-label input[name="text"]', "alice: fires on dogs")
    alice.click('form.new-label button[type="submit"]')  # htmx swaps the labels section in place
    expect(alice.locator("article.label-card .label-text")).to_have_text(["alice: fires on dogs"])

    bob.goto(labels_url)
    expect(bob.locator("article.label-card .label-text")).to_have_text(["alice: fires on dogs"])
    bob.click("article.label-card button.vote-up")
    expect(bob.locator("article.label-card .score")).to_have_text(["+1"])
    expect(bob.locator("article.label-card button.vote-up")).to_have_class(re.compile("voted"))
    bob.fill('form.new-comment input[name="body"]', "also cats?")
    bob.click('form.new-comment button[type="submit"]')
    expect(bob.locator("ul.comments .body")).to_have_text(["also cats?"])
    bob.fill('form.new-label input[name="text"]', "bob: pets in general")
    bob.click('form.new-label button[type="submit"]')
    expect(bob.locator("article.label-card .label-text")).to_have_count(2)

    alice.reload()
    expect(alice.locator("article.label-card .label-text")).to_have_text(["alice: fires on dogs", "bob: pets in general"])
    expect(alice.locator("article.label-card.canonical .score")).to_have_text("+1")
    expect(alice.locator("ul.comments .author")).to_have_text(["bob"])
    cards = alice.locator("article.label-card")
    cards.filter(has_text="bob: pets").locator("button.vote-up").click()
    expect(cards.locator(".label-text")).to_have_text(["bob: pets in general", "alice: fires on dogs"])  # tie: newest
    cards.filter(has_text="alice: fires").locator("button.vote-down").click()  # alice downvotes her own
    expect(cards.filter(has_text="alice: fires").locator(".score")).to_have_text("+0")
    expect(alice.locator("article.label-card .label-text")).to_have_text(["bob: pets in general", "alice: fires on dogs"])

    bob.reload()
    expect(bob.locator("article.label-card.canonical .label-text")).to_have_text("bob: pets in general")

    # the labeling flow's keyboard shortcuts: e focuses the text box, s skips to the next unlabeled feature
    alice.goto(f"{base}/sources/{live_lab.source}/label-next")
    expect(alice).to_have_url(re.compile(r"/features/2/labeling"))  # 0 is dead (nothing to label), 1 is labeled
    alice.keyboard.press("e")
    expect(alice.locator("#label-text")).to_be_focused()
    alice.keyboard.press("Escape")
    alice.keyboard.press("s")
    expect(alice).to_have_url(re.compile(r"/features/3/labeling"))
    alice.fill("#label-text", "alice via the flow")
    alice.press("#label-text", "Enter")
    expect(alice).to_have_url(re.compile(r"/features/4/labeling"))
    bob.goto(f"{base}/sources/{live_lab.source}/activity")
    expect(bob.locator("ul.activity li.event-label_created .summary").first).to_have_text("alice via the flow")
    assert csp_violations == [], "a page broke its Content-Security-Policy"
