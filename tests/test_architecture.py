"""Which package may import which (docs/architecture.md), read from the source with `ast`.

Imports under `if TYPE_CHECKING:` are for type checkers only and are left out;
imports inside functions count (they are imports all the same).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WEBAPP = ROOT / "webapp"
FEATURES = (
    "auth",
    "orgs",
    "billing",
    "payments",
    "usage",
    "bots",
    "kb",
    "learning",
    "conversations",
    "analytics",
)
BASE = ("webapp.core", "webapp.db", "webapp.errors", "webapp.extensions", "webapp.config")
FACTORY = "webapp"
SANDBOX = "webapp.payments.sandbox"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(WEBAPP.rglob("*.py"))}


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """Modules an import statement loads: `from webapp.kb import services` loads
    webapp.kb.services, `from webapp.kb.services import x` loads webapp.kb.services."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif node.module is not None and node.level == 0:
        for alias in node.names:
            submodule = f"{node.module}.{alias.name}"
            yield submodule if submodule in MODULES else node.module


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.update(_imported(node))
        elif isinstance(node, ast.If) and _type_checking(node):
            for statement in node.orelse:
                visit(statement)
        else:
            for child in ast.iter_child_nodes(node):
                visit(child)

    visit(ast.parse(path.read_text()))
    return {name for name in found if name.startswith("webapp")}


IMPORTS = {name: imports_of(path) for name, path in MODULES.items()}


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def feature_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FEATURES else None


def is_entry_point(name: str) -> bool:
    """A feature's web or command entry: api.py, *_api.py, views.py, cli.py."""
    last = name.rsplit(".", 1)[-1]
    return feature_of(name) is not None and (
        last in ("api", "views", "cli") or last.endswith("_api")
    )


def test_the_imports_are_read() -> None:
    """Guards the rules below against passing on an empty reading."""
    assert {"auth", "billing", "conversations", "kb", "payments"} <= set(FEATURES)
    assert "webapp.api" in IMPORTS["webapp.usage.api"]
    assert "webapp.kb.services" in IMPORTS["webapp.kb.api"]
    assert "webapp.payments.sandbox.views" in IMPORTS[FACTORY]  # inside a function
    assert "webapp.orgs.models" not in IMPORTS["webapp.auth.models"]  # TYPE_CHECKING only


def test_the_base_knows_no_feature() -> None:
    wrong = {
        (name, imported)
        for name, imported_names in IMPORTS.items()
        if any(within(name, base) for base in BASE)
        for imported in imported_names
        if feature_of(imported) or imported in ("webapp.api", "webapp.portal", "webapp.models")
    }
    assert not wrong


def test_no_feature_imports_another_features_api_views_or_commands() -> None:
    wrong = {
        (name, imported)
        for name, imported_names in IMPORTS.items()
        if name != FACTORY
        for imported in imported_names
        if is_entry_point(imported) and feature_of(imported) != feature_of(name)
    }
    assert not wrong


def test_shared_plumbing_is_imported_by_its_own_layer_only() -> None:
    """webapp.api by API modules, webapp.portal by portal views: services stay web-free."""
    wrong = set()
    for name, imported_names in IMPORTS.items():
        last = name.rsplit(".", 1)[-1]
        if "webapp.api" in imported_names and not (last == "api" or last.endswith("_api")):
            wrong.add((name, "webapp.api"))
        if "webapp.portal" in imported_names and last != "views":
            wrong.add((name, "webapp.portal"))
    assert not wrong


def test_only_the_factory_and_the_sandbox_import_the_sandbox() -> None:
    entry_points = {"worker": ROOT / "worker.py", "wsgi": ROOT / "wsgi.py"}
    everything = IMPORTS | {name: imports_of(path) for name, path in entry_points.items()}
    wrong = {
        (name, imported)
        for name, imported_names in everything.items()
        if name != FACTORY and not within(name, SANDBOX)
        for imported in imported_names
        if within(imported, SANDBOX)
    }
    assert not wrong
    assert IMPORTS[FACTORY] & {f"{SANDBOX}.views"}  # the one registration


def _cycle() -> list[str] | None:
    """One import cycle among webapp modules, if there is any (depth-first search)."""
    graph = {
        name: {i for i in imported if i in MODULES and i not in (name, FACTORY)}
        for name, imported in IMPORTS.items()
    }
    done: set[str] = set()

    def walk(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        for imported in sorted(graph[name]):
            if found := walk(imported, [*path, name]):
                return found
        done.add(name)
        return None

    for name in sorted(graph):
        if found := walk(name, []):
            return found
    return None


def test_no_import_cycles() -> None:
    assert _cycle() is None


@pytest.mark.parametrize(
    ("importer", "imported"),
    [("webapp.kb.engines", "webapp.kb.llm"), ("webapp.auth.models", "webapp.orgs.models")],
)
def test_a_cycle_would_be_found(
    monkeypatch: pytest.MonkeyPatch, importer: str, imported: str
) -> None:
    """The other direction exists, so adding this import closes a cycle."""
    monkeypatch.setitem(IMPORTS, importer, IMPORTS[importer] | {imported})
    cycle = _cycle()
    assert cycle is not None and importer in cycle and imported in cycle
