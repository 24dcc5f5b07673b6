"""The dependency direction, checked on the source: the domain (``catalog``) imports none of the
other packages, and nothing that ships imports the dev tooling, the benchmark or the tests."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
SHIPPED = ("catalog", "projections", "carts", "drafts", "orders", "writeback", "ops", "hybridsite")
FIRST_PARTY = {*SHIPPED, "devtools", "bench", "tests"}

# package -> the first-party packages it may import (besides itself). ``hybridsite`` holds the
# settings, the DynamoDB adapter and the shared HTTP pieces that every app uses, and the URL wiring
# that imports every app.
ALLOWED = {
    "catalog": set(),
    "projections": {"catalog", "orders", "hybridsite"},  # orders: projected like the catalog
    "writeback": {"hybridsite"},  # the Streams consumer: each app registers how to apply its records
    "carts": {"catalog", "projections", "writeback", "hybridsite"},
    "drafts": {"catalog", "projections", "writeback", "hybridsite"},
    "orders": {"catalog", "carts", "projections", "hybridsite"},  # reads served like the catalog's
    "ops": {"catalog", "projections", "hybridsite"},  # operating the site: metrics, SLOs, read-only mode, drift watch
    "hybridsite": {"catalog", "projections", "carts", "drafts", "orders", "writeback", "ops"},
}


def imported_packages(path: Path) -> set[str]:
    """First-party top-level packages a module imports (relative imports stay inside its package)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & FIRST_PARTY


def modules(package: str) -> list[Path]:
    return sorted(p for p in (BASE_DIR / package).rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("package", SHIPPED)
def test_packages_import_only_what_they_may(package: str) -> None:
    wrong = {
        str(path.relative_to(BASE_DIR)): sorted(imported_packages(path) - ALLOWED[package] - {package})
        for path in modules(package)
    }
    assert {path: packages for path, packages in wrong.items() if packages} == {}


def test_the_rules_see_every_shipped_module() -> None:
    """The check would pass vacuously if it read nothing."""
    assert all(modules(package) for package in SHIPPED)
    assert "catalog" in imported_packages(BASE_DIR / "projections" / "registry.py")
