"""What a conformance check found: one frozen record per check, one report per run.

A check is data, not output: its id (stable, for grading scripts), a title and what was expected
and what came (readable text, in the chosen language), and a verdict. The CLI renders these as a
table, plain lines or JSON; nothing here prints.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from socklab.protocol.escaping import escape_for_terminal


class Verdict(enum.Enum):
    PASS = "pass"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Finding:
    """What one check observed; the runner adds the check's id, title and verdict."""

    expected: str
    received: str
    passed: bool
    note: str = ""


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
    visible. Data longer than `limit` bytes is cut, with the total size (the project's one
    escaper).
    """
    return escape_for_terminal(data, max_bytes=limit, quoted=True)
