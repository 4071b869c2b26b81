"""Labeling ten demo features with only the labeling page, at 1440 x 900 in headless chromium: the evidence and
the label form are in the first screen, the keyboard flow (accept, reject, edit, skip) moves along the drafts."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.browser.conftest import LiveServer, launch_chromium, watch_csp

pytestmark = pytest.mark.browser


@pytest.fixture
def drafted_demo(request, tmp_path):
    """A copy of the test demo database with a draft on every alive feature (as a demo first start leaves it)."""
    from tests.browser.conftest import _demo_available

    if not _demo_available():
        pytest.skip("the demo artifacts are not installed")
    from app.services.autolabel.background import draft_all

    copy = tmp_path / "demo.db"
    shutil.copy(request.getfixturevalue("demo_database"), copy)
    url = f"sqlite:///{copy}"
    assert draft_all(url) > 0
    return url


def _in_first_screen(page, selector: str) -> bool:
    box = page.locator(selector).first.bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 900


def test_label_ten_demo_features_from_the_labeling_page(drafted_demo, tmp_path):
    from playwright.sync_api import expect

    from app.config import Settings
    from app.http.app import create_app
    from app.store.engine import make_engine, make_sessionmaker
    from app.store.sources import source_names

    engine = make_engine(drafted_demo)
    with make_sessionmaker(engine)() as session:
        source = source_names(session)[0]
    engine.dispose()
    app = create_app(Settings(database_url=drafted_demo, data_dir=tmp_path / "data", load_model=False,
                              open_registration=True))
    with LiveServer(app) as server, launch_chromium() as browser:
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        violations = watch_csp(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{server.url}/register?next=/account")
        page.fill('form.register input[name="username"]', "ada")
        page.fill('form.register input[name="password"]', "a long enough password")
        page.click('form.register button[type="submit"]')
        page.wait_for_url(f"{server.url}/account")

        page.goto(f"{server.url}/sources/{source}/label-next")
        seen, actions = [], ["a", "r", "edit", "a", "s", "a", "edit", "r", "a", "a"]
        for action in actions:
            expect(page).to_have_url(re.compile(r"/features/\d+/labeling"))
            index = int(re.search(r"/features/(\d+)/labeling", page.url).group(1))
            assert index not in seen
            seen.append(index)
            # the decision and its evidence in the first screen, without scrolling
            assert page.evaluate("window.scrollY") == 0
            assert _in_first_screen(page, "#evidence li.example .ex span.pk")
            assert page.locator("#evidence .example-group[data-kind='top'] li.example").count() >= 1
            assert _in_first_screen(page, "#label-text") and _in_first_screen(page, "form#accept button")
            draft = page.locator(".draft-shown strong").inner_text()
            assert draft and page.locator("#label-text").input_value() == draft
            if action == "edit":
                page.keyboard.press("e")
                expect(page.locator("#label-text")).to_be_focused()
                page.fill("#label-text", f"ada's label for {index}")
                page.press("#label-text", "Enter")
            else:
                page.keyboard.press(action)
            page.wait_for_url(lambda url, i=index: f"/features/{i}/labeling" not in url)
        assert len(seen) == 10
        context.close()
        assert violations == [], "the labeling page broke its Content-Security-Policy"

    with make_sessionmaker(engine := make_engine(drafted_demo))() as session:
        from sqlalchemy import select

        from app.store.models import Account, Label, Vote

        ada = session.scalar(select(Account.id).where(Account.username == "ada"))
        votes = dict(session.execute(select(Label.feature_index, Vote.value).join(Label, Label.id == Vote.label_id)
                                     .where(Vote.account_id == ada)).all())
        written = set(session.scalars(select(Label.feature_index).where(Label.author_id == ada)))
    engine.dispose()
    accepted = {seen[k] for k, a in enumerate(actions) if a == "a"}
    rejected = {seen[k] for k, a in enumerate(actions) if a == "r"}
    assert {i for i, v in votes.items() if v == 1} == accepted
    assert {i for i, v in votes.items() if v == -1} == rejected
    assert written == {seen[k] for k, a in enumerate(actions) if a == "edit"}
