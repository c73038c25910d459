"""What a conformance check found: one frozen record per check, one report per run.

A check is data, not output: its id (stable, for grading scripts), a title and what was expected
and what came (readable text, in the chosen language), and a verdict. The CLI renders these as a
table, plain lines or JSON; nothing here prints.

Checks declare what they depend on (`depends_on`: ids of earlier checks). `run_checks` runs them
in order and reports a root cause once: a check whose dependency failed (or was itself not
reached) is not run and gets the verdict NOT_REACHED, naming the failed check in `blocked_by`.
A finding may also end the run (`ends_run`: the server is gone); every later check is then not
reached. NOT_REACHED is not a failure of its own: only FAILs are counted as failed.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from socklab.i18n import _
from socklab.protocol.escaping import escape_for_terminal


class Verdict(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    # The check could not be judged: a check it depends on failed first (`blocked_by`), or
    # what it judges never happened in this run (the reason is in `received`).
    NOT_REACHED = "not reached"


@dataclass(frozen=True, slots=True)
class Finding:
    """What one check observed; the runner adds the check's id, title and verdict.

    `not_reached` (a reason) says the check had nothing to judge in this run; `ends_run` says
    no later check can run (the server stopped listening).
    """

    expected: str
    received: str
    passed: bool
    note: str = ""
    not_reached: str = ""
    ends_run: bool = False


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check: `expected` and `received` are readable; `note` says what the deviation means.

    `blocked_by` is the id of the failed check that kept this one from running ("" if none).
    """

    check_id: str
    title: str
    expected: str
    received: str
    verdict: Verdict
    note: str = ""
    blocked_by: str = ""

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    @property
    def failed(self) -> bool:
        return self.verdict is Verdict.FAIL

    @property
    def reached(self) -> bool:
        return self.verdict is not Verdict.NOT_REACHED


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Every check of one run against one program (those run so far, if `interrupted`)."""

    subject: str  # "converter-server" or "converter-client"
    target: str  # HOST:PORT, or the client's command line ({host}/{port} substituted)
    transport: str  # "tcp" or "udp"
    framing: str  # the framing expected ("line", "length", "raw"); "datagram" over UDP
    results: tuple[CheckResult, ...]
    interrupted: bool = False

    @property
    def conforming(self) -> bool:
        return (
            bool(self.results)
            and not self.interrupted
            and all(result.passed for result in self.results)
        )

    @property
    def passed_count(self) -> int:
        return sum(1 for result in self.results if result.passed)

    @property
    def failed_count(self) -> int:
        return sum(1 for result in self.results if result.failed)

    @property
    def not_reached_count(self) -> int:
        return sum(1 for result in self.results if not result.reached)


class DeclaredCheck(Protocol):
    """What the runner needs of a check: its id, title and the ids it depends on."""

    @property
    def check_id(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def depends_on(self) -> tuple[str, ...]: ...


CheckT = TypeVar("CheckT", bound=DeclaredCheck)


class CheckObserver(Protocol):
    """Who watches a run as it goes (the CLI's live output). Call order:
    run_started -> [check_started? -> check_done]* ; a check that is not reached is only done."""

    def run_started(self, report: CheckReport) -> None:
        """What is checked, where and how: a report with no results yet."""

    def check_started(self, check_id: str, title: str, number: int, total: int) -> None:
        """Check `number` of `total` begins."""

    def check_done(self, result: CheckResult) -> None:
        """A check's result, as soon as it is known."""


def run_checks(
    checks: Sequence[CheckT],
    judge: Callable[[CheckT], Finding],
    observer: CheckObserver | None = None,
) -> tuple[list[CheckResult], bool]:
    """Judge `checks` in order, each once its dependencies passed; report each as it completes.

    A dependency that is not among `checks` (filtered out by transport, framing or `--only`)
    does not block. The observer sees each result as soon as it is known (live output).
    Returns the results and whether the run was interrupted (Ctrl+C): then the results are
    those completed so far.
    """
    done: dict[str, CheckResult] = {}
    results: list[CheckResult] = []
    try:
        _judge_all(checks, judge, observer, done, results)
    except KeyboardInterrupt:
        return results, True
    return results, False


def _judge_all(
    checks: Sequence[CheckT],
    judge: Callable[[CheckT], Finding],
    observer: CheckObserver | None,
    done: dict[str, CheckResult],
    results: list[CheckResult],
) -> None:
    ended_by: CheckResult | None = None
    for number, check in enumerate(checks, start=1):
        blocker = ended_by or _first_blocker(check, done)
        if blocker is not None:
            result = not_reached_result(check, blocker)
        else:
            if observer is not None:
                observer.check_started(check.check_id, check.title, number, len(checks))
            finding = judge(check)
            result = result_of(check, finding)
            if result.failed and finding.ends_run:
                ended_by = result
        done[check.check_id] = result
        results.append(result)
        if observer is not None:
            observer.check_done(result)


def _first_blocker(check: DeclaredCheck, done: dict[str, CheckResult]) -> CheckResult | None:
    """The failed check behind the first dependency that failed or was blocked; None when none
    did. A dependency that had nothing to judge (not reached for a reason of its own) blocks
    nothing: its dependants judge for themselves."""
    for dependency in check.depends_on:
        result = done.get(dependency)
        if result is None:
            continue
        if result.failed:
            return result
        if result.blocked_by:
            return done[result.blocked_by]
    return None


def result_of(check: DeclaredCheck, finding: Finding) -> CheckResult:
    """The record of a judged check (a note only where it did not pass)."""
    if finding.not_reached:
        return CheckResult(
            check.check_id,
            check.title,
            finding.expected,
            finding.not_reached,
            Verdict.NOT_REACHED,
        )
    return CheckResult(
        check.check_id,
        check.title,
        finding.expected,
        finding.received,
        Verdict.PASS if finding.passed else Verdict.FAIL,
        "" if finding.passed else finding.note,
    )


def not_reached_result(check: DeclaredCheck, blocker: CheckResult) -> CheckResult:
    return CheckResult(
        check.check_id,
        check.title,
        "",
        _("not reached: {check} failed first").format(check=blocker.check_id),
        Verdict.NOT_REACHED,
        blocked_by=blocker.check_id,
    )


def show_bytes(data: bytes, *, limit: int = 120, name_size: bool = True) -> str:
    """Bytes as a reader wants to see them: "quoted" text, with \\n, \\r, \\t and \\xNN escapes.

    Valid UTF-8 is shown as its characters (so `STRASSE` and `straße` read as typed); control
    characters, invalid bytes and quotes are escaped, so trailing newlines and stray bytes are
    visible. Data longer than `limit` bytes is cut, with the total size (the project's one
    escaper); `name_size=False` for a line that names the size itself.
    """
    return escape_for_terminal(data, max_bytes=limit, quoted=True, name_size=name_size)
