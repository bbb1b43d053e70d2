"""The explicit package list in pyproject.toml must match the source tree."""

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _listed():
    return set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])


def test_every_package_is_listed_in_pyproject():
    found = {"lod3d"}
    for init in (REPO / "lod3d").rglob("__init__.py"):
        rel = init.parent.relative_to(REPO)
        found.add(".".join(rel.parts))
    for top, name in (("cli", "lod3d.cli"), ("kernels", "lod3d.kernels")):
        for init in (REPO / top).rglob("__init__.py"):
            found.add(".".join((name, *init.parent.relative_to(REPO / top).parts)))
    assert found == _listed()


def test_kernels_stay_pure():
    """Kernels import no lod3d module and do no I/O."""
    for path in (REPO / "kernels").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("lod3d"), f"{path.name} imports {node.module}"
                assert node.level <= 1, f"{path.name} reaches outside kernels/"
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
                assert not any(n.startswith("lod3d") for n in names), f"{path.name} imports {names}"
                assert not any(n in ("rasterio", "os", "pathlib", "json") for n in names), f"{path.name} does I/O"
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "open", f"{path.name} opens files"


def test_library_does_not_import_upward():
    """Stage modules never import the CLI."""
    for path in (REPO / "lod3d").rglob("*.py"):
        text = path.read_text()
        assert "lod3d.cli" not in text and "from ..cli" not in text, path
