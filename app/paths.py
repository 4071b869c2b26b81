"""Where the repository's non-Python folders live (templates/, static/, migrations/ sit beside app/)."""

from pathlib import Path

APP_DIR = Path(__file__).resolve().parent
ROOT = APP_DIR.parent
TEMPLATES_DIR = ROOT / "templates"
STATIC_DIR = ROOT / "static"
MIGRATIONS_DIR = ROOT / "migrations"
DEMO_ARTIFACTS_DIR = APP_DIR / "demo" / "artifacts"
