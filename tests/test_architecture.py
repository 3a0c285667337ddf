"""The house's shape, checked: layered packages, and honest dependencies.

- Between ``app/`` packages, imports go one way, except the pairs named (with
  their reason) in docs/architecture.md.
- Every third-party module ``app/`` imports is a declared dependency, and every
  declared runtime dependency is imported (or its indirect use is named here).
"""

from __future__ import annotations

import ast
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "app"

# The two-way pairs docs/architecture.md explains.
ALLOWED_PAIRS = {("ingest", "stores"), ("policies", "stores")}

# Distribution name → the module it is imported as, where they differ.
IMPORT_NAMES = {
    "sqlalchemy": "sqlalchemy",
    "pydantic-settings": "pydantic_settings",
    "prometheus-client": "prometheus_client",
    "pydantic-core": "pydantic_core",
    "python-multipart": "multipart",
    "uvicorn": "uvicorn",
}
# Declared for what they do without being imported by name.
INDIRECT = {
    "aiosqlite": "the SQLite driver SQLAlchemy loads for sqlite+aiosqlite:// URLs",
    "tzdata": "time zone data for zoneinfo on systems without /usr/share/zoneinfo",
    "python-multipart": "FastAPI parses multipart uploads (POST /v1/imports) with it",
}


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return names


def _package_of(path: Path) -> str | None:
    parts = path.relative_to(APP).parts
    return parts[0] if len(parts) > 1 else None


def _dependencies() -> list[str]:
    """The install's dependencies, and the ``postgres`` extra's (the driver, imported
    only on PostgreSQL's paths: an SQLite install runs without it)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = [*project["dependencies"], *project["optional-dependencies"]["postgres"]]
    return [_dist_name(spec) for spec in specs]


def _dist_name(spec: str) -> str:
    for stop in "[<>=!~ ;":
        spec = spec.split(stop, 1)[0]
    return spec.strip().lower()


def test_packages_import_each_other_only_where_the_architecture_says_why() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for path in APP.rglob("*.py"):
        source = _package_of(path)
        if source is None:
            continue
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] == "app" and len(parts) > 2 and parts[1] != source:
                edges[source].add(parts[1])
    pairs = {
        tuple(sorted((a, b)))
        for a, targets in edges.items()
        for b in targets
        if a in edges.get(b, set())
    }
    assert pairs == ALLOWED_PAIRS


def test_every_third_party_import_is_declared_and_every_dependency_used() -> None:
    declared = _dependencies()
    modules = {dist: IMPORT_NAMES.get(dist, dist.replace("-", "_")) for dist in declared}
    imported: set[str] = set()
    for path in APP.rglob("*.py"):
        for name in _imports(path):
            top = name.split(".")[0]
            if top != "app" and top not in sys.stdlib_module_names and top != "__future__":
                imported.add(top)
    undeclared = imported - set(modules.values())
    assert not undeclared, f"imported by app/ but not in pyproject dependencies: {undeclared}"
    unused = {d for d, m in modules.items() if m not in imported and d not in INDIRECT}
    assert not unused, f"declared but never imported by app/: {unused}"
