"""A server process loads its own model and what serving needs, nothing more.

Every module a server imports stays resident for its whole life, and the course measures servers
holding 10,000 idle connections against a 40 MB budget (docs/PERFORMANCE.md). So the CLI builds
only the chosen command, the registry imports only the chosen model, and the standard library's
heavier helpers (shutil, which brings bz2/lzma/zlib; pathlib, which brings urllib) stay out.
"""

from __future__ import annotations

import subprocess
import sys

# Builds `socklab converter server`'s parser and starts the model, as the command does, then
# lists what was imported.
PROBE = """
import sys
from socklab.cli.main import build_parser
from socklab.runtimes import RUNTIMES
argv = ["converter", "server", "--model", sys.argv[1]]
build_parser(argv).parse_args(argv)
RUNTIMES[sys.argv[1]].serve
print(" ".join(sorted(sys.modules)))
"""

HEAVY = {"shutil", "pathlib", "bz2", "lzma", "urllib.parse", "ipaddress"}
MODEL_MODULES = {
    "asyncio": "socklab.runtimes.asyncio_loop",
    "iterative": "socklab.runtimes.iterative",
    "selectors": "socklab.runtimes.selector_loop",
    "threads": "socklab.runtimes.threaded",
}


def imported_by_server(model: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, model], capture_output=True, text=True, timeout=60, check=True
    )
    return set(result.stdout.split())


def test_a_server_imports_only_its_own_model() -> None:
    for model, module in MODEL_MODULES.items():
        modules = imported_by_server(model)
        assert module in modules
        others = set(MODEL_MODULES.values()) - {module}
        # iterative and threads share the blocking loop, not each other's module
        assert modules.isdisjoint(others), (model, modules & others)


def test_a_server_leaves_the_heavy_helpers_out() -> None:
    modules = imported_by_server("asyncio")
    assert modules.isdisjoint(HEAVY), modules & HEAVY
    assert "socklab.tools.capture" not in modules
    assert "socklab.tools.ports" not in modules  # read only when a port is taken
