"""sparklib is the future standalone library: it must not depend on Home Assistant."""

from __future__ import annotations

import ast
from pathlib import Path

import custom_components.spark_control.sparklib as sparklib

SPARKLIB = Path(sparklib.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Absolute names imported; a relative import reaching above sparklib counts as the
    integration (`custom_components`)."""
    depth = len(path.relative_to(SPARKLIB).parts)  # levels from the file up to sparklib
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level > depth:
                names.add("custom_components")
            elif node.level == 0 and node.module:
                names.add(node.module)
    return names


def test_no_homeassistant_or_integration_imports() -> None:
    files = sorted(SPARKLIB.rglob("*.py"))
    assert len(files) > 10
    offenders = {
        str(path.relative_to(SPARKLIB)): sorted(
            name
            for name in imported_modules(path)
            if name.split(".")[0] in {"homeassistant", "custom_components"}
        )
        for path in files
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_public_api_is_exported() -> None:
    for name in sparklib.__all__:
        assert getattr(sparklib, name) is not None
