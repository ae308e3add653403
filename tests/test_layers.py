"""The layers of the code, checked on its import statements (an ``ast`` walk).

* ``storage/`` and ``providers/`` never import ``relay``;
* nothing in ``relay/`` imports ``bench`` at module level (the product does not depend
  on the benchmark harness; ``relay bench`` loads it when run);
* no import cycle between relay's sub-packages (and top-level modules);
* ``relay/api`` and ``relay/gateway`` never import ``storage.repos``: they speak to
  services;
* ``relay/services`` and ``relay/events`` never import the API, the gateway, the
  transport or the process modules (the registry that wires them is in ``relay/process``);
* the ``relay/`` root holds at most 8 modules (the rest lives in sub-packages).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Import:
    """One import statement: who imports what, and whether at module level."""

    importer: str
    target: str
    top_level: bool


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(importer: str, is_package: bool, level: int, module: str | None) -> str:
    if level == 0:
        return module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def imports_in(package: str) -> Iterator[Import]:
    """Every import statement of every module under ``package``."""
    for path in sorted((ROOT / package).rglob("*.py")):
        importer = _module_name(path)
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        yield from _walk(tree, importer, is_package, top_level=True)


def _walk(node: ast.AST, importer: str, is_package: bool, *, top_level: bool) -> Iterator[Import]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import):
            for alias in child.names:
                yield Import(importer, alias.name, top_level)
        elif isinstance(child, ast.ImportFrom):
            base = _resolve(importer, is_package, child.level, child.module)
            # `from relay import wire` imports the module relay.wire.
            targets = (
                [f"{base}.{alias.name}" for alias in child.names] if base == "relay" else [base]
            )
            for target in targets:
                yield Import(importer, target, top_level)
        nested = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        yield from _walk(child, importer, is_package, top_level=top_level and not nested)


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _layer(name: str) -> str:
    """The sub-package (or top-level module) of relay that ``name`` belongs to."""
    return ".".join(name.split(".")[:2])


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle in the graph, as the nodes along it, or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for successor in sorted(edges.get(node, ())):
            found = visit(successor, [*path, node])
            if found:
                return found
        done.add(node)
        return None

    for start in sorted(edges):
        found = visit(start, [])
        if found:
            return found
    return None


def test_storage_and_providers_never_import_relay() -> None:
    offending = [
        item
        for package in ("storage", "providers")
        for item in imports_in(package)
        if _within(item.target, "relay")
    ]
    assert offending == []


def test_the_product_does_not_import_the_benchmark_harness_at_module_level() -> None:
    offending = [
        item for item in imports_in("relay") if item.top_level and _within(item.target, "bench")
    ]
    assert offending == []


def test_relay_sub_packages_import_each_other_without_cycles() -> None:
    edges: dict[str, set[str]] = {}
    for item in imports_in("relay"):
        if not _within(item.target, "relay") or item.target == "relay":
            continue
        source, target = _layer(item.importer), _layer(item.target)
        if source != target and source != "relay":
            edges.setdefault(source, set()).add(target)
    assert _cycle(edges) is None


def test_the_api_and_the_gateway_speak_to_services_not_to_repositories() -> None:
    offending = [
        item
        for package in ("relay/api", "relay/gateway")
        for item in imports_in(package)
        if _within(item.target, "storage.repos")
    ]
    assert offending == []


def test_services_and_events_never_import_the_layers_above_them() -> None:
    above = ("relay.api", "relay.gateway", "relay.transport", "relay.process", "relay.app")
    offending = [
        item
        for package in ("relay/services", "relay/events")
        for item in imports_in(package)
        if any(_within(item.target, layer) for layer in above)
    ]
    assert offending == []


def test_the_relay_root_holds_only_the_assembly_and_the_shared_basics() -> None:
    # Process, transport, events, API and services code lives in its sub-package.
    root = sorted(path.name for path in (ROOT / "relay").glob("*.py"))
    assert len(root) <= 8, root
