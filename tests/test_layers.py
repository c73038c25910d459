"""The layers of DESIGN.md hold: every `socklab.*` import points down, and the core loads no I/O.

Rank map (higher may import lower, same-rank siblings may import each other):
`cli` > `apps`, `tools`, `clients` > `runtimes` > `tracing` > `protocol` > `errors`, `i18n`.
Every import is read from the source with `ast`, also those inside functions and the string
given to `importlib.import_module`; imports under `if TYPE_CHECKING:` load nothing at run time
and are allowed (ALLOW_TYPE_CHECKING). The root package (`socklab/__init__.py`, lazy exports) and
`__main__` sit above every layer. Each check is also run on a synthetic offender, so a check that
could never fail is caught too.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

import socklab

SOURCE_ROOT = Path(socklab.__file__).parent
RANKS: dict[str, int] = {
    "errors": 0,
    "i18n": 0,
    "protocol": 1,
    "tracing": 2,
    "runtimes": 3,
    "apps": 4,
    "tools": 4,
    "clients": 4,
    "cli": 5,
}
TOP = 6  # the root package and __main__: entry points over every layer
ALLOW_TYPE_CHECKING = True  # annotations only: nothing is imported when the program runs
IO_MODULES = ("socket", "selectors", "asyncio")


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name, e.g. "socklab.runtimes.listening"
    imported: str  # dotted module name, e.g. "socklab.tools.ports"
    line: int
    type_checking: bool


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def rank_of(module: str) -> int:
    """The layer rank of a `socklab...` module; unknown layers fail loudly."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return TOP
    if parts[1] not in RANKS:
        raise AssertionError(f"{module} is in no layer: add it to RANKS here and in DESIGN.md")
    return RANKS[parts[1]]


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                inside.update(id(descendant) for descendant in ast.walk(child))
    return inside


def _import_module_target(node: ast.Call) -> str | None:
    """The module named in `importlib.import_module("socklab.x.y")` or an f-string's fixed start."""
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
    if name != "import_module" or not node.args:
        return None
    argument = node.args[0]
    if isinstance(argument, ast.JoinedStr) and argument.values:
        argument = argument.values[0]
    if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
        return argument.value.rstrip(".")
    return None


def socklab_imports(source: str, importer: str, *, is_package: bool = False) -> list[Import]:
    """Every import of a socklab module in `source`, wherever it stands in the file."""
    tree = ast.parse(source)
    type_checking = _type_checking_nodes(tree)
    package = importer if is_package else importer.rpartition(".")[0]
    found: list[Import] = []

    def add(imported: str, node: ast.AST) -> None:
        if imported == "socklab" or imported.startswith("socklab."):
            line = getattr(node, "lineno", 0)
            found.append(Import(importer, imported, line, id(node) in type_checking))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                if node.module is None:  # `from . import config` imports package.config
                    for alias in node.names:
                        add(".".join([*base, alias.name]), node)
                    continue
                module = ".".join([*base, node.module])
            else:
                module = node.module or ""
            if module == "socklab":
                # `from socklab import errors` imports the submodule socklab.errors.
                for alias in node.names:
                    is_layer = alias.name in RANKS or alias.name == "__main__"
                    add(f"socklab.{alias.name}" if is_layer else "socklab", node)
            else:
                add(module, node)
        elif isinstance(node, ast.Call):
            target = _import_module_target(node)
            if target is not None:
                add(target, node)
    return sorted(found, key=lambda found: found.line)


def upward_imports(imports: list[Import]) -> list[str]:
    # The root package itself (`from socklab import __version__`) is imported before any
    # submodule anyway; its exports are lazy, and the fresh-interpreter test below catches an
    # eager one that would load I/O into the core.
    return [
        f"{found.importer}:{found.line} imports {found.imported}"
        for found in imports
        if found.imported != "socklab"
        and rank_of(found.imported) > rank_of(found.importer)
        and not (ALLOW_TYPE_CHECKING and found.type_checking)
    ]


def all_socklab_imports() -> list[Import]:
    imports: list[Import] = []
    for path in sorted(SOURCE_ROOT.rglob("*.py")):
        imports += socklab_imports(
            path.read_text(encoding="utf-8"),
            module_name(path),
            is_package=path.name == "__init__.py",
        )
    return imports


def test_no_layer_imports_a_layer_above_it() -> None:
    imports = all_socklab_imports()
    assert len(imports) > 200, "the import reader found too few imports to be reading them"
    assert upward_imports(imports) == []


OFFENDER = textwrap.dedent(
    """
    from __future__ import annotations

    from typing import TYPE_CHECKING

    from socklab.errors import UsageError
    from . import config
    from ..protocol import session

    if TYPE_CHECKING:
        from socklab.cli.status import ExitStatus

    def describe(port: int) -> str:
        from socklab.tools.ports import describe_port_holder
        return describe_port_holder(port, "tcp") or ""

    def later() -> None:
        import socklab.apps.hello
        from ..clients import converter_client
        importlib.import_module(f"socklab.cli.{name}")
    """
)


def test_the_layer_check_finds_upward_imports_inside_functions() -> None:
    imports = socklab_imports(OFFENDER, "socklab.runtimes.listening")
    assert [found.imported for found in imports] == [
        "socklab.errors",
        "socklab.runtimes.config",
        "socklab.protocol",
        "socklab.cli.status",
        "socklab.tools.ports",
        "socklab.apps.hello",
        "socklab.clients",
        "socklab.cli",
    ]
    assert upward_imports(imports) == [
        "socklab.runtimes.listening:14 imports socklab.tools.ports",
        "socklab.runtimes.listening:18 imports socklab.apps.hello",
        "socklab.runtimes.listening:19 imports socklab.clients",
        "socklab.runtimes.listening:20 imports socklab.cli",
    ]


def test_siblings_of_one_rank_and_lower_layers_are_allowed() -> None:
    source = "import socklab.tools.ports\nfrom socklab.clients import converter_client\n"
    assert upward_imports(socklab_imports(source, "socklab.apps.hello")) == []
    with pytest.raises(AssertionError, match=r"^socklab\.web\.page is in no layer"):
        upward_imports(socklab_imports("import socklab.errors\n", "socklab.web.page"))


def io_modules_loaded_by(modules: list[str]) -> list[str]:
    """The I/O modules a fresh interpreter has loaded after importing `modules`."""
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(' '.join(m for m in {IO_MODULES!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout.split()


def protocol_modules() -> list[str]:
    root = SOURCE_ROOT / "protocol"
    return [module_name(path) for path in sorted(root.rglob("*.py"))]


def test_importing_the_core_loads_no_io_module() -> None:
    modules = protocol_modules()
    assert "socklab.protocol.session" in modules
    assert io_modules_loaded_by(modules) == []


def test_the_io_check_sees_a_module_that_loads_sockets() -> None:
    # The runtimes open sockets, so they must show up; `errors` alone must not.
    assert io_modules_loaded_by(["socklab.errors"]) == []
    assert "socket" in io_modules_loaded_by(["socklab.runtimes.oserrors"])
