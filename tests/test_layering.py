"""The house's layering: each room imports only the rooms before it (README "Design"), lazy imports too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# ground floor first; a room may import itself and any room listed before it
ROOMS = [
    "prompt_kit",
    "networks",
    "teacher",
    "distill.datasets",
    "distill.kd",
    "distill.evaluation",
    "distill.training",
    "distill.unlabelled",
    "distill.compare",
    "distill.prompt_search",
    "cli",
]
# rooms beside each other on one floor: neither imports the other
SIDE_BY_SIDE = {("distill.unlabelled", "distill.compare"), ("distill.unlabelled", "distill.prompt_search")}


def _room(module: str) -> str | None:
    matches = [room for room in ROOMS if module == room or module.startswith(room + ".")]
    return max(matches, key=len) if matches else None


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _product_files() -> list[Path]:
    tops = ("prompt_kit", "networks", "teacher", "distill", "cli")
    files = [path for top in tops for path in (ROOT / top).rglob("*.py")]
    return sorted(path for path in files if path != ROOT / "distill" / "__init__.py")  # a docstring only


@pytest.mark.parametrize("path", _product_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_a_room_imports_only_the_rooms_below_it(path):
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    room = _room(module)
    assert room is not None, f"{module} is in no room of the house: add it to README 'Design' and ROOMS"
    below = set(ROOMS[: ROOMS.index(room) + 1])
    for name in _imports(path):
        target = _room(name)
        if target is None:  # a library
            continue
        beside = (room, target) in SIDE_BY_SIDE or (target, room) in SIDE_BY_SIDE
        assert target in below and not beside, f"{module} imports {name}: {room} may not import {target}"


def test_distill_holds_packages_not_loose_modules():
    loose = [path.name for path in (ROOT / "distill").glob("*.py") if path.name != "__init__.py"]
    assert loose == []
