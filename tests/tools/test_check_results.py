"""The pure parts of `socklab check`: how bytes are shown, and what a report concludes."""

from __future__ import annotations

from socklab.tools.check.results import CheckReport, CheckResult, Verdict, show_bytes


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
