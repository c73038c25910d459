"""The pure parts of `socklab check`: how bytes are shown, and what a report concludes."""

from __future__ import annotations

from dataclasses import dataclass

from socklab.tools.check.results import (
    CheckReport,
    CheckResult,
    Finding,
    Verdict,
    run_checks,
    show_bytes,
)


def test_show_bytes_makes_invisible_bytes_visible() -> None:
    assert show_bytes(b"upper\n") == '"upper\\n"'
    assert show_bytes(b"CRLF\r\n") == '"CRLF\\r\\n"'
    assert show_bytes("STRAßE".encode()) == '"STRAßE"'
    assert show_bytes(b"caf\xe9\x00") == '"caf\\xe9\\x00"'
    assert show_bytes(b'say "hi" \\') == '"say \\"hi\\" \\\\"'
    assert show_bytes(b"") == '""'


def test_show_bytes_cuts_long_data_with_its_size() -> None:
    shown = show_bytes(b"a" * 70_000, limit=10)
    assert shown == '"aaaaaaaaaa…" (70,000 bytes)'


def test_report_conforms_only_when_every_check_passed() -> None:
    passed = CheckResult("a", "A", "x", "x", Verdict.PASS)
    failed = CheckResult("b", "B", "x", "y", Verdict.FAIL, "why")
    report = CheckReport("converter-server", "h:1", "tcp", "line", (passed, failed))
    assert not report.conforming
    assert (report.passed_count, report.failed_count) == (1, 1)
    assert CheckReport("converter-server", "h:1", "tcp", "line", (passed,)).conforming
    assert not CheckReport("converter-server", "h:1", "tcp", "line", ()).conforming


# --- the runner: dependencies, roots, interruption ---------------------------------------------


@dataclass(frozen=True)
class FakeCheck:
    check_id: str
    depends_on: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return self.check_id.upper()


def judged(findings: dict[str, Finding], checks: list[FakeCheck]) -> list[tuple[str, str, str]]:
    results, interrupted = run_checks(checks, lambda check: findings[check.check_id])
    assert not interrupted
    return [(r.check_id, r.verdict.value, r.blocked_by) for r in results]


PASSES = Finding("x", "x", True)
FAILS = Finding("x", "y", False, "why")


def test_a_failed_dependency_makes_its_dependants_not_reached() -> None:
    checks = [FakeCheck("root"), FakeCheck("child", ("root",)), FakeCheck("grandchild", ("child",))]
    assert judged({"root": FAILS, "child": PASSES, "grandchild": PASSES}, checks) == [
        ("root", "fail", ""),
        ("child", "not reached", "root"),
        ("grandchild", "not reached", "root"),  # the root cause, not the blocked middle
    ]
    assert judged({"root": PASSES, "child": FAILS, "grandchild": PASSES}, checks) == [
        ("root", "pass", ""),
        ("child", "fail", ""),
        ("grandchild", "not reached", "child"),
    ]


def test_nothing_to_judge_blocks_nothing() -> None:
    """A dependency not reached for a reason of its own lets its dependants judge for themselves."""
    checks = [FakeCheck("a"), FakeCheck("b", ("a",))]
    idle = Finding("x", "", False, not_reached="not reached: nothing happened")
    results, _ = run_checks(checks, lambda check: idle if check.check_id == "a" else FAILS)
    assert [(r.verdict, r.received) for r in results] == [
        (Verdict.NOT_REACHED, "not reached: nothing happened"),
        (Verdict.FAIL, "y"),
    ]


def test_a_finding_that_ends_the_run_blocks_every_later_check() -> None:
    checks = [FakeCheck("a"), FakeCheck("gone"), FakeCheck("b"), FakeCheck("c")]
    gone = Finding("x", "refused", False, ends_run=True)
    findings = {"a": PASSES, "gone": gone, "b": PASSES, "c": PASSES}
    assert judged(findings, checks) == [
        ("a", "pass", ""),
        ("gone", "fail", ""),
        ("b", "not reached", "gone"),
        ("c", "not reached", "gone"),
    ]


def test_counts_leave_not_reached_out_of_the_failures() -> None:
    results, _ = run_checks(
        [FakeCheck("a"), FakeCheck("b", ("a",))],
        lambda check: FAILS if check.check_id == "a" else PASSES,
    )
    report = CheckReport("converter-client", "cmd", "tcp", "line", tuple(results))
    assert (report.passed_count, report.failed_count, report.not_reached_count) == (0, 1, 1)
    assert not report.conforming


def test_ctrl_c_keeps_the_results_so_far() -> None:
    seen: list[str] = []

    class Watcher:
        def run_started(self, report: CheckReport) -> None:
            pass

        def check_started(self, check_id: str, title: str, number: int, total: int) -> None:
            if check_id == "b":
                raise KeyboardInterrupt

        def check_done(self, result: CheckResult) -> None:
            seen.append(result.check_id)

    results, interrupted = run_checks(
        [FakeCheck("a"), FakeCheck("b"), FakeCheck("c")], lambda check: PASSES, Watcher()
    )
    assert interrupted
    assert [result.check_id for result in results] == seen == ["a"]
    report = CheckReport("converter-server", "h:1", "tcp", "line", tuple(results), interrupted)
    assert not report.conforming
