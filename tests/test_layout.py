"""The dependency direction, checked on the source: the project's base (``hybridsite``) and the
domain (``catalog``) import none of the other packages, no two apps import each other (directly or
round a longer cycle), and nothing that ships imports the dev tooling, the benchmark or the tests."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent
SHIPPED = ("catalog", "projections", "carts", "drafts", "orders", "writeback", "ops", "hybridsite")
FIRST_PARTY = {*SHIPPED, "devtools", "bench", "tests", "infra"}

# package -> the first-party packages it may import (besides itself). ``hybridsite`` is the base
# below every app: the settings, the DynamoDB adapter, the Redis connection and key functions, the
# shared HTTP pieces (errors, rate limits, token authentication, health, the schema's conventions).
# It imports no app. It names them only as Django's wiring must, in dotted strings that Django
# resolves at start-up (INSTALLED_APPS and middleware in settings, ``include("carts.urls")`` in
# urls): the apps plug into the base, the base does not reach into them. Those strings are not
# imports, so this test leaves them be, on purpose.
ALLOWED = {
    "catalog": set(),
    # Built around the catalog's views; an app above (orders) registers its own aggregate.
    "projections": {"catalog", "hybridsite"},
    "writeback": {"hybridsite"},  # the Streams consumer: each app registers how to apply its records
    "carts": {"catalog", "projections", "writeback", "hybridsite"},
    "drafts": {"catalog", "projections", "writeback", "hybridsite"},
    "orders": {"catalog", "carts", "projections", "hybridsite"},  # reads served like the catalog's
    # operating the site: metrics, SLOs, read-only mode, drift watch, the write-back's state
    # and the staff exports of products and orders
    "ops": {"catalog", "projections", "writeback", "orders", "hybridsite"},
    "hybridsite": set(),
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


def cycles_in(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle of ``graph`` (module -> what it imports), each from its first member."""
    cycles: list[list[str]] = []

    def visit(module: str, trail: list[str]) -> None:
        if module in trail:
            cycle = trail[trail.index(module):]
            if cycle[0] == min(cycle):  # each cycle once, from its smallest member
                cycles.append([*cycle, module])
            return
        for imported in sorted(graph.get(module, ())):
            visit(imported, [*trail, module])

    for module in sorted(graph):
        visit(module, [])
    return cycles


def test_no_two_apps_import_each_other() -> None:
    """The arrows between apps point one way, on the source and in the rules above: an app that
    needs another's help at run time registers with it (orders with the projection registry,
    carts with the write-back registry) instead of being imported by it."""
    imported = {
        package: set().union(*(imported_packages(path) for path in modules(package))) & set(SHIPPED) - {package}
        for package in SHIPPED
    }
    assert "projections" in imported["orders"]  # the check reads the imports it means to
    assert cycles_in(imported) == []
    assert cycles_in(ALLOWED) == []


def test_the_infra_reads_the_apps_through_the_adapter_and_the_writeback_registry() -> None:
    """The CDK app reads the tables (``hybridsite.dynamodb``) and the write-back tables
    (``writeback.registry``); no app imports it (``infra`` is in no package's allowed set)."""
    imported = {str(p.relative_to(BASE_DIR)): imported_packages(p) - {"infra"} for p in modules("infra")}
    assert {path: packages for path, packages in imported.items() if packages - {"hybridsite", "writeback"}} == {}


def test_the_rules_see_every_shipped_module() -> None:
    """The check would pass vacuously if it read nothing."""
    assert all(modules(package) for package in SHIPPED)
    assert "catalog" in imported_packages(BASE_DIR / "projections" / "registry.py")


def bench_imports(path: Path) -> set[str]:
    """The bench modules a bench module imports (``from bench import x``, ``from bench.x import``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "bench":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("bench."):
            found.add(node.module.split(".")[1])  # type: ignore[union-attr]
        elif isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module.split(".")[0]} if node.module else {alias.name for alias in node.names}
    return found - {path.stem}


def test_the_bench_phases_import_each_other_in_one_direction() -> None:
    """One module per phase and ``run.py`` ordering them: no module imports ``run``, and no two
    bench modules import each other, directly or round a longer cycle."""
    graph = {path.stem: bench_imports(path) for path in (BASE_DIR / "bench").glob("*.py")}
    assert "prepare" in graph["run"]  # the check reads the imports it means to
    assert sorted(module for module, imports in graph.items() if "run" in imports) == []
    assert cycles_in(graph) == []
