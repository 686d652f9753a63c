"""The layering DESIGN.md promises, checked on the source: only the GUI touches Dear PyGui, the
renderer knows nothing about scenes, and the scene knows nothing about the engine or the GUI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

STUDIO = Path(__file__).resolve().parents[1] / "studio"


def imported_modules(path: Path) -> set[str]:
    """Absolute names of everything a module imports (relative imports resolved)."""
    package = ".".join(path.relative_to(STUDIO.parent).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names.add(mod)
            names.update(f"{mod}.{a.name}" for a in node.names)
    return names


def modules_in(package: str) -> list[Path]:
    return sorted((STUDIO / package).rglob("*.py"))


@pytest.mark.parametrize("package", ["render", "scene", "optim", "data", "scenarios"])
def test_only_the_gui_package_imports_dearpygui(package):
    for path in modules_in(package):
        bad = [m for m in imported_modules(path) if m.split(".")[0] == "dearpygui"]
        assert not bad, f"{path.relative_to(STUDIO)} imports {bad}"


def test_the_renderer_knows_nothing_about_scenes_engines_or_the_gui():
    for path in modules_in("render"):
        bad = [m for m in imported_modules(path) if m.startswith(("studio.scene", "studio.optim", "studio.gui", "studio.data"))]
        assert not bad, f"{path.relative_to(STUDIO)} imports {bad}"


def test_the_scene_knows_nothing_about_the_engine_or_the_gui():
    for path in modules_in("scene"):
        bad = [m for m in imported_modules(path) if m.startswith(("studio.optim", "studio.gui", "studio.data"))]
        assert not bad, f"{path.relative_to(STUDIO)} imports {bad}"


def test_headless_entry_points_never_load_dearpygui():
    code = ("import sys, studio.cli, studio.workspace, studio.data, studio.optim.gradient_views; "
            "sys.exit(1 if 'dearpygui' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
