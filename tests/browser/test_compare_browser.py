"""Issue 17 in a real browser: the compare page's plot and lists, the source page's feature map (drawn on a
canvas from its JSON, hover names a feature, click opens it)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.browser.conftest import LiveServer

pytestmark = pytest.mark.browser
N_FEATURES = 400


@pytest.fixture(scope="module")
def compare_server(tmp_path_factory):
    from app.config import Settings
    from app.http.app import create_app
    from app.store import compare as qc
    from app.store.engine import make_engine, upgrade_database
    from tests.fixtures import add_source

    folder = tmp_path_factory.mktemp("compare-db")
    url = f"sqlite:///{folder / 'compare.db'}"
    upgrade_database(url)
    a = add_source(url, name="layer-1", d_sae=N_FEATURES, dead={3}, with_examples=False)
    b = add_source(url, name="layer-3", d_sae=N_FEATURES, hook_name="blocks.3.hook_resid_post", with_examples=False,
                   seed=1)
    rng = np.random.default_rng(0)
    features = np.arange(N_FEATURES)[np.arange(N_FEATURES) != 3]
    engine = make_engine(url)
    try:
        qc.write_matches(engine, a, b, features, rng.integers(0, N_FEATURES, len(features)), rng.uniform(0, 1, len(features)),
                         np.full(len(features), np.nan))
        qc.write_matches(engine, b, a, np.arange(N_FEATURES), rng.integers(0, N_FEATURES, N_FEATURES),
                         rng.uniform(0, 1, N_FEATURES), np.full(N_FEATURES, np.nan))
        angle = np.linspace(0, 6 * np.pi, N_FEATURES)
        qc.write_map(engine, a, "pca", np.stack([angle * np.cos(angle), angle * np.sin(angle)], axis=1))
    finally:
        engine.dispose()
    from app.services import accounts, labels
    from app.store.engine import make_sessionmaker

    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        ada = accounts.create_account(session, "ada", "correct horse battery staple", "labeler")
        for index in (7, 8):
            labels.create_label(session, ada, "layer-1", index, f"dates in text {index}")
    engine.dispose()
    app = create_app(Settings(database_url=url, data_dir=folder / "data", load_model=False))
    with LiveServer(app) as server:
        yield server


def test_compare_page_renders_plot_summary_and_links(page, compare_server):
    page.goto(f"{compare_server.url}/sources/layer-1/compare/layer-3")
    page.wait_for_selector("figure.match-curve svg polyline.line")
    assert page.locator("figure.match-curve svg polyline.line").count() == 2  # corr both ways; no cosines
    box = page.locator("figure.match-curve svg").bounding_box()
    assert box["width"] > 300 and box["height"] > 120
    assert page.locator(".compare-summary tr[data-direction]").count() == 2
    assert page.locator(".best-matched tbody tr").count() == 25
    page.locator(".best-matched a.feature-link").first.click()
    page.wait_for_url("**/sources/layer-1/features/*")
    assert page.locator(".matches li.source-match[data-source=layer-3]").count() == 1


def test_source_page_feature_map_hover_and_click(page, compare_server):
    page.goto(f"{compare_server.url}/sources/layer-1")
    canvas = page.locator(".feature-map canvas")
    page.wait_for_selector(f".feature-map canvas[data-points='{N_FEATURES}']")
    assert page.locator(".feature-map .map-method").inner_text() == "PCA"
    drawn = page.evaluate("""() => { const c = document.querySelector('.feature-map canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""")
    assert drawn > N_FEATURES  # every point is a few pixels
    # the last feature sits at the spiral's end: find it on screen from the map data and hover it
    canvas.scroll_into_view_if_needed()
    spot = page.evaluate("""async () => {
        const r = await (await fetch('/api/v1/sources/layer-1/map')).json();
        const c = document.querySelector('.feature-map canvas'), box = c.getBoundingClientRect();
        const xs = r.x, ys = r.y, i = xs.length - 1;
        const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
        const px = 12 + (xs[i] - x0) * (c.width - 24) / (x1 - x0), py = c.height - 12 - (ys[i] - y0) * (c.height - 24) / (y1 - y0);
        return {x: box.left + px * box.width / c.width, y: box.top + py * box.height / c.height}; }""")
    page.mouse.move(spot["x"], spot["y"])
    assert page.locator(".feature-map .map-tip").inner_text().startswith(f"Feature {N_FEATURES - 1} ")
    page.fill(".feature-map .map-search", "Dates")
    page.wait_for_selector(".feature-map[data-highlighted='2']")
    page.fill(".feature-map .map-search", "10-14, 20")
    page.wait_for_selector(".feature-map[data-highlighted='6']")
    page.mouse.click(spot["x"], spot["y"])
    page.wait_for_url(f"**/sources/layer-1/features/{N_FEATURES - 1}")
