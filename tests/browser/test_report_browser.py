"""The steering report card in headless chromium: the form is filled and sent the way a person does, the shared
page draws its plots (steered and control lines) under the real CSP, and its link serves the same report."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.browser.conftest import LiveServer, launch_chromium, watch_csp

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site(world, tmp_path_factory):
    from app.config import Settings
    from app.http.app import create_app
    from app.ml.bundle import load_bundle

    url = world.copy_to(tmp_path_factory.mktemp("report-db"))
    app = create_app(Settings(database_url=url, data_dir=tmp_path_factory.mktemp("report-data"), load_model=False),
                     bundle=load_bundle(world.model, world.saes, device="cpu"))
    with LiveServer(app) as server:
        yield server


def test_report_card_form_runs_and_the_shared_page_plots_it(site, world):
    feature = world.alive["world-l1"][0]
    with launch_chromium() as browser:
        context = browser.new_context()
        violations = watch_csp(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(f"{site.url}/steer/report?source=world-l1&feature={feature}")
        assert page.input_value("#report-features").strip() == f"world-l1:{feature}"
        page.fill("#report-features", f"world-l1:{feature}@4")
        page.fill("#report-prompts", "The quick\nA fox")
        page.fill("input[name=multiples]", "0.5 1 2")
        page.check("input[name=method][value=clamp]")
        page.click("#report-form button[type=submit]")
        page.wait_for_url(re.compile(r".*/steer/report/[A-Za-z0-9_-]+$"))
        page.wait_for_selector("figure.report-plot svg")
        assert page.locator("figure.report-plot").count() >= 3
        assert page.locator("figure.report-plot polyline[data-series=steered]").count() >= 3
        assert page.locator("figure.report-plot polyline[data-series=control]").count() >= 3
        assert page.locator("table.report-sweep tbody tr").count() == 1 + 3 * 2
        box = page.locator("figure.report-plot svg").first.bounding_box()
        assert box and box["width"] > 100 and box["height"] > 50  # drawn, not collapsed
        report_id = page.url.rsplit("/", 1)[1]
        twin = httpx.get(f"{site.url}/api/v1/steer/report/{report_id}").json()
        assert twin["request"]["method"] == "clamp" and twin["request"]["prompts"] == ["The quick", "A fox"]
        assert page.locator(".report-card a", has_text="JSON").get_attribute("href").endswith(
            f"/api/v1/steer/report/{report_id}")
        context.close()
    assert violations == [] and errors == []
