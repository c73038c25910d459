"""What a conformance check found: one frozen record per check, one report per run.

A check is data, not output: its id (stable, for grading scripts), a title and what was expected
and what came (readable text, in the chosen language), and a verdict. The CLI renders these as a
table, plain lines or JSON; nothing here prints.
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass


class Verdict(enum.Enum):
    PASS = "pass"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check: `expected` and `received` are readable; `note` says what the deviation means."""

    check_id: str
    title: str
    expected: str
    received: str
    verdict: Verdict
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Every check of one run against one program."""

    subject: str  # "converter-server" or "converter-client"
    target: str  # HOST:PORT, or the client's command line
    transport: str  # "tcp" or "udp"
    framing: str  # the framing expected ("line", "length", "raw"); "datagram" over UDP
    results: tuple[CheckResult, ...]

    @property
    def conforming(self) -> bool:
        return bool(self.results) and all(result.passed for result in self.results)

    @property
    def passed_count(self) -> int:
        return sum(1 for result in self.results if result.passed)

    @property
    def failed_count(self) -> int:
        return len(self.results) - self.passed_count


def show_bytes(data: bytes, *, limit: int = 120) -> str:
    """Bytes as a reader wants to see them: "quoted" text, with \\n, \\r, \\t and \\xNN escapes.

    Valid UTF-8 is shown as its characters (so `STRASSE` and `straße` read as typed); control
    characters, invalid bytes and quotes are escaped, so trailing newlines and stray bytes are
    visible. Long data is cut after `limit` characters with the total size.
    """
    pieces: list[str] = []
    text = data.decode("utf-8", errors="surrogateescape")
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, kept by surrogateescape
            pieces.append(f"\\x{code - 0xDC00:02x}")
        elif char in _ESCAPES:
            pieces.append(_ESCAPES[char])
        elif unicodedata.category(char).startswith("C"):
            pieces.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            pieces.append(char)
    shown = "".join(pieces)
    if len(shown) > limit:
        return f'"{shown[:limit]}…" ({len(data):,} bytes)'
    return f'"{shown}"'


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\", '"': '\\"'}
