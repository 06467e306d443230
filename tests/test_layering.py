"""Imports go one way: workflow stages never import the CLI, the renderers or the recipes."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "tunesmith"
STAGES = ("base", "data", "strategies", "training", "evaluate")
TOP = {"cli", "render", "render_data", "demo", "chat", "compare"}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            names.add((node.module or "").split(".")[0])
            names.update(alias.name for alias in node.names if not node.module)
    return names


def test_stages_never_import_the_cli_renderers_or_recipes():
    offenders = [
        f"{path.relative_to(SRC)} imports {sorted(imported_modules(path) & TOP)}"
        for stage in STAGES
        for path in (SRC / stage).rglob("*.py")
        if imported_modules(path) & TOP
    ]
    assert not offenders
