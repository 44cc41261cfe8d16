"""The layers docs/architecture.md draws, as the imports keep them: read from the source, nothing imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPOSITORY

GROUPS = ("runtime", "optimization", "tracking", "champion")
MAY_USE = {
    "runtime": set(),
    "optimization": {"runtime"},
    "tracking": {"runtime", "optimization"},
    "champion": {"runtime", "optimization"},
}
"""Which of the four groups each may import: runtime is the bottom; tracking and champion do not know each other."""
OUTSIDE_LIBRARIES = ("ray", "mlflow", "optuna", "tuning")
"""What `fmnist` never imports: it knows the data, pictures and the model only."""


def imported_modules(path: Path) -> set[str]:
    """Every module a source file imports, wherever in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def sources(package: str) -> list[Path]:
    return sorted((REPOSITORY / package).rglob("*.py"))


def group_of(path: Path) -> str:
    return path.relative_to(REPOSITORY / "tuning").parts[0]


def violations(path: Path, group: str) -> list[str]:
    """The imports of one file of the group `group` that break the layers."""
    wrong = []
    for module in imported_modules(path):
        parts = module.split(".")
        if parts[0] != "tuning" or len(parts) < 2:
            continue
        if parts[1] not in GROUPS:
            wrong.append(f"{module}: a group never imports the entry points or the search's own modules")
        elif parts[1] != group and parts[1] not in MAY_USE[group]:
            wrong.append(f"{module}: {group} may use {sorted(MAY_USE[group]) or 'no other group'}")
    return sorted(set(wrong))


@pytest.mark.parametrize("path", [path for group in GROUPS for path in sources(f"tuning/{group}")],
                         ids=lambda path: str(path.relative_to(REPOSITORY)))
def test_each_group_imports_only_the_layers_below(path: Path) -> None:
    assert violations(path, group_of(path)) == []


@pytest.mark.parametrize("path", [path for path in sources("tuning") if group_of(path) != "testing"],
                         ids=lambda path: str(path.relative_to(REPOSITORY)))
def test_the_product_never_imports_the_testing_helpers(path: Path) -> None:
    assert {module for module in imported_modules(path) if module.startswith("tuning.testing")} == set()


@pytest.mark.parametrize("path", sources("fmnist"), ids=lambda path: str(path.relative_to(REPOSITORY)))
def test_fmnist_knows_nothing_of_the_search(path: Path) -> None:
    outside = {module for module in imported_modules(path) if module.split(".")[0] in OUTSIDE_LIBRARIES}
    assert outside == set()


def test_the_check_finds_an_upward_import(tmp_path: Path) -> None:
    """A runtime module that imports the settings and the optimization group is refused for both."""
    bad = tmp_path / "probe.py"
    bad.write_text("from tuning.settings import SearchSettings\nimport tuning.optimization.objective\n")
    assert violations(bad, "runtime") == [
        "tuning.optimization.objective: runtime may use no other group",
        "tuning.settings.SearchSettings: a group never imports the entry points or the search's own modules",
        "tuning.settings: a group never imports the entry points or the search's own modules",
    ]
