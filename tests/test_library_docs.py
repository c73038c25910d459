"""Every code block of docs/LIBRARY.md runs, in order, as a reader would paste them (and
tests/test_exports.py type-checks them with mypy --strict)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from socklab.runtimes import RUNTIMES

PROJECT = Path(__file__).resolve().parents[1]
LIBRARY_DOC = PROJECT / "docs" / "LIBRARY.md"


def code_blocks() -> list[tuple[int, str]]:
    """The ```python blocks of the page, each with the line its code starts on."""
    text = LIBRARY_DOC.read_text(encoding="utf-8")
    return [
        (text.count("\n", 0, match.start(1)) + 1, match.group(1))
        for match in re.finditer(r"^```python\n(.*?)^```", text, flags=re.M | re.S)
    ]


@pytest.mark.timeout(120)
def test_every_code_block_runs_in_order() -> None:
    blocks = code_blocks()
    assert len(blocks) >= 6
    namespace: dict[str, object] = {"__name__": "library_docs"}
    for first_line, code in blocks:
        # Padded so that a traceback names the line of docs/LIBRARY.md.
        source = "\n" * (first_line - 1) + code
        exec(compile(source, str(LIBRARY_DOC), "exec"), namespace)


def test_the_page_serves_every_model_and_is_linked_from_the_readme() -> None:
    code = "\n".join(block for _, block in code_blocks())
    assert all(f'"{model}"' in code for model in RUNTIMES)
    assert all(f'"{framing}"' in code for framing in ("line", "length", "udp"))
    # Named as a path, not a relative link: README is also the package index page (issue 20).
    assert "`docs/LIBRARY.md`" in (PROJECT / "README.md").read_text(encoding="utf-8")
