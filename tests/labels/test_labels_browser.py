"""Two people in two browser contexts (headless Debian chromium via Playwright) label, vote, comment and see each
other's work on a live uvicorn server. Skipped with the reason when chromium or playwright is missing."""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-component-update"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_lab(lab):
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(lab.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    lab.url = f"http://127.0.0.1:{port}"
    yield lab
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def chromium():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium to run browser tests")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield browser
        browser.close()


def _register(browser, base: str, name: str):
    page = browser.new_context().new_page()
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
    alice, bob = _register(chromium, base, "alice"), _register(chromium, base, "bob")

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
    expect(alice).to_have_url(re.compile(r"/features/0/labeling"))
    alice.keyboard.press("e")
    expect(alice.locator("#label-text")).to_be_focused()
    alice.keyboard.press("Escape")
    alice.keyboard.press("s")
    expect(alice).to_have_url(re.compile(r"/features/2/labeling"))  # 1 is labeled now
    alice.fill("#label-text", "alice via the flow")
    alice.press("#label-text", "Enter")
    expect(alice).to_have_url(re.compile(r"/features/3/labeling"))
    bob.goto(f"{base}/sources/{live_lab.source}/activity")
    expect(bob.locator("ul.activity li.event-label_created .summary").first).to_have_text("alice via the flow")
