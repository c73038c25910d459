"""The core stays sans-I/O: nothing under socklab/protocol imports sockets, threads, loops or clocks."""

from __future__ import annotations

import ast
from pathlib import Path

import socklab.protocol

FORBIDDEN = {
    "socket",
    "selectors",
    "asyncio",
    "threading",
    "time",
    "select",
    "ssl",
    "subprocess",
    "multiprocessing",
    "uvloop",
    "random",
    "os",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_protocol_package_has_no_io_imports() -> None:
    root = Path(socklab.protocol.__file__).parent
    offenders = {
        str(path.relative_to(root)): sorted(imported_modules(path) & FORBIDDEN)
        for path in root.rglob("*.py")
        if imported_modules(path) & FORBIDDEN
    }
    assert offenders == {}
