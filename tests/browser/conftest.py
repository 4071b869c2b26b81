"""A live uvicorn server over the demo database (or the factory when the demo precompute is absent),
and a headless Debian chromium driven by Playwright. Skipped with a reason when chromium is missing.

Helpers other browser tests import: `LiveServer(app)`, `launch_chromium()`, `log_in(page, url, user, password)` and
`watch_csp(context)`, which records Content-Security-Policy violations so a test can assert that none happened."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-component-update"]
CSP_REPORTER = """document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " +
                e.sourceFile + ":" + e.lineNumber);
});"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, app):
        import uvicorn

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _demo_available() -> bool:
    try:
        from app.precompute.runner import precompute_demo  # noqa: F401
    except ImportError:
        return False
    from app.paths import DEMO_ARTIFACTS_DIR

    return (DEMO_ARTIFACTS_DIR / "model" / "config.json").is_file()


@pytest.fixture(scope="module")
def browse_database(request, tmp_path_factory) -> tuple[str, str]:
    """(database url, name of a source) — the real demo when its precompute exists, else factory rows."""
    if _demo_available():
        import shutil

        demo = request.getfixturevalue("demo_database")
        copy = tmp_path_factory.mktemp("browser-db") / "demo.db"
        shutil.copy(demo, copy)
        url = f"sqlite:///{copy}"
        from app.store.engine import make_engine, make_sessionmaker
        from app.store.sources import source_names

        engine = make_engine(url)
        with make_sessionmaker(engine)() as session:
            name = source_names(session)[0]
        engine.dispose()
        return url, name

    from app.store.engine import upgrade_database
    from tests.fixtures import add_source
    from tests.ml.factories import encode
    from tests.web.conftest import TEXT, build_tokenizer_dir

    folder = tmp_path_factory.mktemp("browser-db")
    tok = build_tokenizer_dir(folder / "model")
    url = f"sqlite:///{folder / 'browse.db'}"
    upgrade_database(url)
    add_source(url, name="factory-sae", model_name=str(tok), d_sae=400, dead={3}, dense={5},
               token_ids=encode(tok, "".join(TEXT)))
    return url, "factory-sae"


@pytest.fixture(scope="module")
def live_server(browse_database, tmp_path_factory):
    from app.config import Settings
    from app.http.app import create_app

    url, _ = browse_database
    app = create_app(Settings(database_url=url, data_dir=tmp_path_factory.mktemp("data"), load_model=False))
    with LiveServer(app) as server:
        yield server


@pytest.fixture(scope="module")
def source_name(browse_database) -> str:
    return browse_database[1]


@contextmanager
def launch_chromium():
    """A headless Debian chromium through Playwright; skips the test with the reason when either is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium) to run browser tests")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python package) is not installed")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def log_in(page, base_url: str, username: str, password: str) -> None:
    """Log ``page`` in through the login form (the way a person does), landing on the home page."""
    page.goto(f"{base_url}/login?next=/")
    page.fill('form.login input[name="username"]', username)
    page.fill('form.login input[name="password"]', password)
    page.click('form.login button[type="submit"]')
    page.wait_for_url(f"{base_url}/")


def watch_csp(context, violations: list[str] | None = None) -> list[str]:
    """Content-Security-Policy violations on every page of a browser context, appended to `violations` (or a new
    list) as they happen."""
    violations = [] if violations is None else violations
    context.add_init_script(CSP_REPORTER)
    context.on("console", lambda msg: violations.append(msg.text) if msg.text.startswith("CSP violation") else None)
    return violations


@pytest.fixture(scope="module")
def browser():
    with launch_chromium() as b:
        yield b


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    violations = watch_csp(context)
    pg = context.new_page()
    yield pg
    context.close()
    assert violations == [], "the page broke its Content-Security-Policy"
