"""The library never depends on the web app: gridmap/ imports neither fastapi nor api/."""

import ast
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[1] / "gridmap"


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module.split(".")[0])
    return modules


def test_library_does_not_import_the_web_layer():
    offenders = {
        str(path.relative_to(LIBRARY.parent)): sorted(imported_modules(path) & {"fastapi", "starlette", "api"})
        for path in LIBRARY.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_modules_stay_small():
    sizes = {str(p.relative_to(LIBRARY.parent)): len(p.read_text().splitlines()) for p in LIBRARY.rglob("*.py")
             if "migrations/versions" not in str(p)}
    assert {k: v for k, v in sizes.items() if v > 400} == {}
