"""The wheel carries every package of app/ plus templates/, static/ and migrations/ (.ci/wheel-smoke builds and
installs it outside the checkout and serves the demo from it)."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _matched(rel: Path, patterns: list[str]) -> bool:
    """setuptools' glob: ``**/`` matches any number of folders, none included."""
    path = rel.as_posix()
    return any(fnmatch(path, pat) or fnmatch(path, pat.replace("**/", "")) for pat in patterns)


def test_every_package_of_app_is_in_the_wheel():
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "app").rglob("__init__.py")}
    listed = set(_setuptools()["packages"])
    assert on_disk - listed == set(), "add these packages to [tool.setuptools] packages in pyproject.toml"


def test_data_folders_are_mapped_and_their_files_matched():
    cfg = _setuptools()
    for name in ("templates", "static", "migrations"):
        package = f"app.{name}"
        assert cfg["package-dir"][package] == name
        patterns = cfg["package-data"][package]
        files = [p for p in (ROOT / name).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        unmatched = [str(p.relative_to(ROOT)) for p in files if not _matched(p.relative_to(ROOT / name), patterns)]
        assert not unmatched, f"{package} would leave these out of the wheel: {unmatched}"
