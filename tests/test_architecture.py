"""Dependencies point inward (ARCHITECTURE.md §4): a forbidden import fails this test."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mlworker"
DOMAIN = (
    "analysis",
    "training",
    "engines",
    "decisioning",
    "experiments",
    "text",
    "monitoring",
    "data",
)
FRAMEWORKS = {
    "fastapi": ("api",),
    "starlette": ("api",),
    "sqlalchemy": ("store",),
    "alembic": ("store",),
    "celery": ("jobs",),
    "kombu": ("jobs",),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _package_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def test_frameworks_are_imported_only_where_they_belong() -> None:
    offences = []
    for path in PACKAGE.rglob("*.py"):
        package = _package_of(path)
        for name in _imports(path) & FRAMEWORKS.keys():
            if package not in FRAMEWORKS[name]:
                offences.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert offences == []


def test_domain_packages_import_no_framework() -> None:
    offences = []
    for package in DOMAIN:
        for path in (PACKAGE / package).rglob("*.py") if (PACKAGE / package).exists() else ():
            bad = _imports(path) & FRAMEWORKS.keys()
            if bad:
                offences.append(f"{path.relative_to(PACKAGE)}: {sorted(bad)}")
    assert offences == []


def test_the_checker_would_catch_an_offence(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import sqlalchemy\nfrom fastapi import FastAPI\n")
    assert _imports(module) & FRAMEWORKS.keys() == {"sqlalchemy", "fastapi"}
