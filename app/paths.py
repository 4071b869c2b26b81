"""Where the non-Python folders live: beside app/ in a checkout (templates/, static/, migrations/ at the top
level), inside the package (app/templates, ...) in an installed wheel."""

from pathlib import Path

APP_DIR = Path(__file__).resolve().parent
ROOT = APP_DIR.parent


def _data_dir(name: str) -> Path:
    installed = APP_DIR / name
    return installed if installed.is_dir() else ROOT / name


TEMPLATES_DIR = _data_dir("templates")
STATIC_DIR = _data_dir("static")
MIGRATIONS_DIR = _data_dir("migrations")
DEMO_ARTIFACTS_DIR = APP_DIR / "demo" / "artifacts"
