"""Dependencies point one way (DESIGN.md, "Layout"), checked statically on the source.

Layers, bottom to top:

- base: every module of ``leakage`` except the top layer (data, models, simulation,
  views, metrics, aggregation, registry, errors, ...);
- plugins: ``attacks`` and ``defenses``, which import only the base and not each other;
- top: ``leakage.quantify``, ``leakage.report``, ``leakage.cli``, ``leakage.testing``
  and ``leakage.integrations`` (the bridges to FL frameworks), which may import everything.

The base reaches the plugins only through ``Registry(..., plugin_modules=("attacks",))``:
a string handed to the registry, imported lazily on first lookup. That string is not an
import and is not reported; ``importlib.import_module("attacks")`` written anywhere else is.

Every module is parsed with ``ast`` and nothing is imported, so the check is fast and
sees imports inside functions and under ``if TYPE_CHECKING:`` as well as at module level.
"""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CHECKED_PACKAGES = ("leakage", "attacks", "defenses")
TOP_LAYER = ("leakage.quantify", "leakage.report", "leakage.cli", "leakage.testing", "leakage.integrations")
PLUGIN_PACKAGES = ("attacks", "defenses")

# Calls whose first string argument names a module that gets imported.
_DYNAMIC_IMPORTERS = frozenset({"import_module", "__import__"})


@dataclass(frozen=True)
class Violation:
    """One import that points the wrong way, with where it is written."""

    path: str  # relative to the checked root, with forward slashes
    line: int
    importer: str  # dotted module name of the file
    imported: str  # dotted module name it imports
    rule: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.imported} ({self.rule})"


def _is_within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def layer_of(module: str) -> str:
    """Return ``"top"``, ``"attacks"``, ``"defenses"``, ``"base"`` or ``"outside"`` for a dotted name."""
    if any(_is_within(module, top) for top in TOP_LAYER):
        return "top"
    for plugin in PLUGIN_PACKAGES:
        if _is_within(module, plugin):
            return plugin
    if _is_within(module, "leakage"):
        return "base"
    return "outside"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve_relative(importer: str, is_package: bool, level: int, module: str | None) -> str:
    # A module's own package is itself for __init__.py and its parent otherwise.
    package = importer.split(".") if is_package else importer.split(".")[:-1]
    base = package[: len(package) - (level - 1)] if level > 1 else package
    return ".".join([*base, *([module] if module else [])])


def _imported_names(tree: ast.Module, importer: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """Yield (line, dotted module) for every import statement and literal dynamic import."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                source = _resolve_relative(importer, is_package, node.level, node.module)
            else:
                source = node.module or ""
            yield node.lineno, source
            # `from leakage import quantify` imports the submodule leakage.quantify.
            for alias in node.names:
                if alias.name != "*":
                    yield node.lineno, f"{source}.{alias.name}" if source else alias.name
        elif isinstance(node, ast.Call):
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)
            if name not in _DYNAMIC_IMPORTERS:
                continue
            arguments = [*node.args[:1], *(kw.value for kw in node.keywords if kw.arg == "name")]
            for argument in arguments:
                if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                    yield node.lineno, argument.value


def _broken_rule(importer_layer: str, imported_layer: str) -> str | None:
    if importer_layer == "base" and imported_layer in PLUGIN_PACKAGES:
        return "the base must not import attacks or defenses; register them through plugin_modules"
    if importer_layer == "base" and imported_layer == "top":
        return "the base must not import the top layer"
    if importer_layer in PLUGIN_PACKAGES and imported_layer == "top":
        return f"{importer_layer} must import only the base, not the top layer"
    if importer_layer in PLUGIN_PACKAGES and imported_layer in PLUGIN_PACKAGES and importer_layer != imported_layer:
        return "attacks and defenses must not import each other"
    return None


def find_layering_violations(root: Path) -> list[Violation]:
    """Return every import under ``root``'s leakage/attacks/defenses that points the wrong way.

    Args:
        root: a directory holding the ``leakage``, ``attacks`` and ``defenses`` packages
            (any of them may be missing).

    Returns:
        Violations sorted by path and line; empty when the layering holds.
    """
    # One report per line and rule: `from attacks.dlg import DLG` names attacks.dlg, not also attacks.dlg.DLG.
    violations: dict[tuple[str, int, str], Violation] = {}
    for package in CHECKED_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            importer = _module_name(path, root)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            is_package = path.name == "__init__.py"
            for line, imported in _imported_names(tree, importer, is_package):
                rule = _broken_rule(layer_of(importer), layer_of(imported))
                if rule is not None:
                    relative = path.relative_to(root).as_posix()
                    key = (relative, line, rule)
                    if key not in violations or len(imported) < len(violations[key].imported):
                        violations[key] = Violation(relative, line, importer, imported, rule)
    return sorted(violations.values(), key=lambda violation: (violation.path, violation.line, violation.imported))


def _write_tree(root: Path, files: dict[str, str]) -> None:
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")


def test_the_repository_imports_point_one_way() -> None:
    # Arrange
    root = REPO_ROOT

    # Act
    violations = find_layering_violations(root)

    # Assert
    assert violations == [], "layering broken:\n" + "\n".join(str(violation) for violation in violations)


def test_the_checker_sees_the_real_packages() -> None:
    # Arrange: guards against a checker that passes because it reads nothing.
    root = REPO_ROOT
    modules = [_module_name(path, root) for package in CHECKED_PACKAGES for path in (root / package).rglob("*.py")]

    # Act
    layers = {layer_of(module) for module in modules}

    # Assert
    assert {"base", "top", "attacks", "defenses"} <= layers


def test_a_planted_base_import_of_attacks_is_reported_with_file_and_line(tmp_path: Path) -> None:
    # Arrange
    _write_tree(
        tmp_path,
        {
            "leakage/__init__.py": "",
            "leakage/views.py": """
                import torch

                import attacks
            """,
        },
    )

    # Act
    violations = find_layering_violations(tmp_path)

    # Assert
    assert [(violation.path, violation.line, violation.imported) for violation in violations] == [
        ("leakage/views.py", 3, "attacks")
    ]
    assert str(violations[0]).startswith("leakage/views.py:3: leakage.views imports attacks")


def test_every_kind_of_wrong_way_import_is_reported(tmp_path: Path) -> None:
    # Arrange
    _write_tree(
        tmp_path,
        {
            "leakage/__init__.py": "",
            "leakage/metrics/__init__.py": """
                def lazy():
                    from defenses.dp import central
                    return central
            """,
            "leakage/simulation.py": """
                import importlib

                def load():
                    return importlib.import_module("attacks.dlg")
            """,
            "leakage/summary.py": "from leakage import report\n",
            "leakage/quantify/__init__.py": "",
            "attacks/__init__.py": "",
            "attacks/dlg.py": """
                from leakage.views import RoundView
                from leakage.quantify.score import score
            """,
            "attacks/history.py": "from defenses import dp\n",
            "defenses/__init__.py": "",
            "defenses/he.py": """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from attacks.base import AttackBase
            """,
            "defenses/dp/__init__.py": "from leakage import testing\n",
            "leakage/metrics/grid.py": "from ..report import figures\n",
        },
    )

    # Act
    violations = find_layering_violations(tmp_path)

    # Assert
    assert {(violation.path, violation.line, violation.imported) for violation in violations} == {
        ("leakage/metrics/__init__.py", 2, "defenses.dp"),
        ("leakage/simulation.py", 4, "attacks.dlg"),
        ("leakage/summary.py", 1, "leakage.report"),
        ("attacks/dlg.py", 2, "leakage.quantify.score"),
        ("attacks/history.py", 1, "defenses"),
        ("defenses/he.py", 3, "attacks.base"),
        ("defenses/dp/__init__.py", 1, "leakage.testing"),
        ("leakage/metrics/grid.py", 1, "leakage.report"),
    }


def test_allowed_directions_and_registry_plugin_strings_are_not_reported(tmp_path: Path) -> None:
    # Arrange: the sanctioned plugin mechanism, imports within a layer and from the top down.
    _write_tree(
        tmp_path,
        {
            "leakage/__init__.py": "from leakage.views import RoundView\n",
            "leakage/views.py": "RoundView = object\n",
            "leakage/registry.py": """
                import importlib

                def load(module):
                    return importlib.import_module(module)
            """,
            "leakage/aggregation/base.py": """
                from leakage.registry import Registry
                SCHEMES = Registry("scheme", plugin_modules=("defenses",))
            """,
            "leakage/quantify/runner.py": """
                import attacks
                from defenses.dp import central
                from leakage.report import html
            """,
            "leakage/cli.py": "from leakage.quantify import runner\n",
            "attacks/__init__.py": "from .dlg import DLG\n",
            "attacks/base.py": """
                from leakage.registry import Registry
                ATTACKS = Registry("attack", plugin_modules=("attacks",))
            """,
            "defenses/mpc.py": "from leakage.aggregation.base import SCHEMES\n",
        },
    )

    # Act
    violations = find_layering_violations(tmp_path)

    # Assert
    assert violations == []
