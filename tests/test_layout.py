"""The package layout: the README's map matches the tree, nothing imports upward, every module says what it is for."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "faseg_cli"
DOTTED = re.compile(r"faseg_cli(\.\w+)+(:\w+)?")
"""A module named in a string (lazy-import tables, builder references), which is an import too."""
ROW = re.compile(r"^\| `(?P<part>[a-z_]+)(?:/|\.py)` \|(?P<what>[^|]+)\|(?P<imports>[^|]*)\|$", re.M)


def parse_map(path: Path) -> list[tuple[str, set[str]]]:
    """The rows of the layout table in ``path``, top to bottom: (part, parts it may import)."""
    rows = [
        (m["part"], {name.strip() for name in m["imports"].split(",") if name.strip()})
        for m in ROW.finditer(path.read_text("utf-8"))
    ]
    assert rows, f"no layout table in {path}"
    return rows


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def part_of(module: str) -> str:
    """``faseg_cli.engine.faseg.refine`` -> ``engine``; ``faseg_cli`` -> ``""`` (the public API)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imported(path: Path) -> list[tuple[str, list[str]]]:
    """Every faseg module ``path`` imports, at any depth (lazy imports and modules named in strings too),
    with the names taken from it."""
    name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = name.rsplit(".", 1)[0] if path.name != "__init__.py" else name.removesuffix(".__init__")
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and DOTTED.fullmatch(node.value):
            module, _, name = node.value.partition(":")
            found.append((module, [name] if name else []))
    return [(target, names) for target, names in found if target.split(".")[0] == "faseg_cli"]


def test_map_lists_exactly_the_parts_of_the_tree():
    parts = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    parts |= {p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")}
    listed = [part for part, _ in parse_map(ROOT / "README.md")]
    assert sorted(listed) == sorted(parts)


def test_algorithm_doc_shows_the_same_map():
    assert parse_map(ROOT / "docs" / "algorithm.md") == parse_map(ROOT / "README.md")


def test_each_part_may_import_only_parts_below_it():
    rows = parse_map(ROOT / "README.md")
    order = [part for part, _ in rows]
    for part, allowed in rows:
        below = set(order[order.index(part) + 1 :])
        assert allowed <= below, f"{part} may import {sorted(allowed - below)}, which are not below it"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_map(path):
    allowed = dict(parse_map(ROOT / "README.md"))
    own = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
    for target, names in imported(path):
        part = part_of(target)
        if part == "":
            assert own in ("__init__", "__main__") or names == ["__version__"], (
                f"{target} imports {names} from the public API; import them from their own module"
            )
        elif own not in ("__init__", "__main__") and part != own:
            assert part in allowed[own], f"{own} imports {target}, which its row of the map does not allow"


@pytest.mark.parametrize("path", sorted((PACKAGE / "engine").rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_methods_share_only_engine_modules(path):
    """No method imports another's package; the shared modules (``diffusion/`` included) import none of them, but
    ``methods`` (the table) names them."""
    from faseg_cli.engine.methods import METHODS

    methods = {m.package for m in METHODS.values()}
    assert "diffusion" not in methods and methods <= {p.name for p in (PACKAGE / "engine").iterdir()}
    own = path.relative_to(PACKAGE / "engine").parts
    for target, _ in imported(path):
        parts = target.split(".")
        if parts[1] != "engine" or len(parts) < 3 or parts[2] not in methods:
            continue
        if own[0] in methods:
            assert parts[2] == own[0], f"engine/{'/'.join(own)} imports {target}, another method"
        else:
            assert own == ("methods.py",), f"engine/{own[0]} is shared by the methods but imports {target}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_starts_by_saying_what_it_is_for(path):
    doc = ast.get_docstring(ast.parse(path.read_text("utf-8")))
    assert doc, f"{path.name} has no docstring"
    first = doc.splitlines()[0]
    assert len(first.split()) >= 4 and first.rstrip().endswith((".", ")")), first


def test_every_folder_of_code_is_a_package():
    """A folder without ``__init__.py`` would be left out of the wheel."""
    folders = {path.parent for path in modules()}
    assert [f for f in folders if not (f / "__init__.py").is_file()] == []
