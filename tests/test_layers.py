"""The import direction of app/: cli → http → services → {store, ml, precompute}; precompute → {ml, store}.

Read from the source (every import statement, also those inside functions), so a lazy import cannot hide an
upward edge. torch is imported only in app/ml and app/precompute; SQL (sqlalchemy) only in app/store, and the
services layer that hands a Session to it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"
LEAVES = {"app", "app.config", "app.errors", "app.paths", "app.demo"}
ALLOWED = {  # layer -> layers it may import (leaves are always allowed)
    "app.cli": {"app.cli", "app.http", "app.services", "app.store", "app.ml", "app.precompute"},
    "app.http": {"app.http", "app.services"},
    "app.services": {"app.services", "app.store", "app.ml", "app.precompute"},
    "app.precompute": {"app.precompute", "app.ml", "app.store"},
    "app.ml": {"app.ml"},
    "app.store": {"app.store"},
}
TORCH_LAYERS = {"app.ml", "app.precompute"}
SQLALCHEMY_LAYERS = {"app.store", "app.services", "app.http"}  # http only for the Session type of a dependency


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) >= 2 and ".".join(parts[:2]) in ALLOWED:
        return ".".join(parts[:2])
    if len(parts) >= 2 and ".".join(parts[:2]) in LEAVES:
        return ".".join(parts[:2])
    return "app" if parts == ["app"] else ".".join(parts[:2])


def _modules():
    for path in sorted(APP.rglob("*.py")):
        rel = path.relative_to(APP.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        yield name, path


def _imports(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:  # `from app.services import browse` imports app.services.browse
                sub = f"{node.module}.{alias.name}"
                if _is_module(sub):
                    yield node.lineno, sub


def _is_module(name: str) -> bool:
    if not name.startswith("app."):
        return False
    path = APP.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def test_imports_point_one_way():
    bad = []
    for name, path in _modules():
        here = _layer(name)
        allowed = LEAVES | ALLOWED.get(here, set())
        for line, target in _imports(path):
            if target != "app" and not target.startswith("app."):
                continue
            there = _layer(target)
            if there in LEAVES or there in allowed or there == here:
                continue
            bad.append(f"{path.relative_to(APP.parent)}:{line} ({here}) imports {target} ({there})")
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


@pytest.mark.parametrize("package, layers", [("torch", TORCH_LAYERS), ("sqlalchemy", SQLALCHEMY_LAYERS)])
def test_heavy_packages_stay_in_their_layers(package, layers):
    bad = []
    for name, path in _modules():
        here = _layer(name)
        if here in layers:
            continue
        for line, target in _imports(path):
            if target == package or target.startswith(package + "."):
                bad.append(f"{path.relative_to(APP.parent)}:{line} ({here}) imports {target}")
    assert not bad, f"{package} outside {sorted(layers)}:\n" + "\n".join(sorted(set(bad)))


def test_leaves_import_only_leaves():
    bad = []
    for name, path in _modules():
        if _layer(name) not in LEAVES:
            continue
        for line, target in _imports(path):
            if target.startswith("app.") and _layer(target) not in LEAVES:
                bad.append(f"{path.relative_to(APP.parent)}:{line} imports {target}")
    assert not bad, "\n".join(bad)
