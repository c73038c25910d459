"""`socklab check converter-server` against socklab's own servers, the slides' server and
deliberately broken ones: the right checks pass, the right deviations are reported, the exit
status says which. Every server is a subprocess on a free loopback port, stopped by PID."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.fixtures.check_processes import running_fixture
from tests.socklab_process import SocklabProcess, free_port, run_socklab
from tests.tools.check_verdicts import assert_counts_match, expect, verdicts

NOT_CONFORMING = 7
STREAM_CHECKS = [
    "greeting",
    "upper-ascii",
    "lower-ascii",
    "upper-unicode",
    "lower-unicode",
    "split-request",
    "merged-requests",
    "crlf",
    "unknown-command",
    "invalid-utf8",
    "over-long",
    "close",
    "concurrent-clients",
]
CHECKS_BY_FRAMING = {
    "line": STREAM_CHECKS,
    "length": [c for c in STREAM_CHECKS if c != "crlf"],
    "raw": [c for c in STREAM_CHECKS if c not in ("crlf", "over-long")],
}
UDP_CHECKS = ["udp-lower", "udp-upper-unicode", "udp-peers", "udp-no-amplification", "udp-empty"]
# Broken servers answer nothing for a while: keep every wait short.
FAST = ["--timeout", "0.5"]


def check_json(*args: str) -> tuple[int, dict[str, Any]]:
    result = run_socklab(["check", "converter-server", *args, "--json"], timeout_s=90)
    assert "Traceback" not in result.stderr, result.stderr
    report = json.loads(result.stdout)
    assert report["schema"] == 1  # every --json output carries its format version
    return result.returncode, report


def failed_ids(report: dict[str, Any]) -> set[str]:
    return {check["id"] for check in report["checks"] if check["verdict"] == "fail"}


def by_id(report: dict[str, Any], check_id: str) -> dict[str, Any]:
    return next(check for check in report["checks"] if check["id"] == check_id)


@pytest.mark.parametrize("framing", ["line", "length", "raw"])
def test_socklab_stream_server_conforms(
    start_socklab: Callable[..., SocklabProcess], framing: str
) -> None:
    server = start_socklab(["converter", "server", "--port", "0", "--framing", framing])
    host, port = server.wait_listening()
    status, report = check_json(f"{host}:{port}", "--framing", framing)
    assert failed_ids(report) == set(), report
    assert status == 0
    assert [check["id"] for check in report["checks"]] == CHECKS_BY_FRAMING[framing]
    assert report["conforming"] is True
    assert (report["subject"], report["transport"], report["framing"]) == (
        "converter-server",
        "tcp",
        framing,
    )
    assert report["passed"] == len(CHECKS_BY_FRAMING[framing]) and report["failed"] == 0


def test_socklab_udp_server_conforms(start_socklab: Callable[..., SocklabProcess]) -> None:
    server = start_socklab(["converter", "server", "--udp", "--port", "0"])
    host, port = server.wait_listening()
    status, report = check_json(f"{host}:{port}", "--udp")
    assert failed_ids(report) == set(), report
    assert status == 0
    assert [check["id"] for check in report["checks"]] == UDP_CHECKS


def test_ipv6_server_conforms(start_socklab: Callable[..., SocklabProcess]) -> None:
    server = start_socklab(["converter", "server", "--host", "::1", "--port", "0"])
    port = int(server.wait_for_line(r"listening on \[::1\]:(\d+)").group(1))
    status, report = check_json(f"[::1]:{port}", "--only", "greeting", "--only", "split-request")
    assert status == 0, report
    assert report["target"] == f"[::1]:{port}"
    assert [check["id"] for check in report["checks"]] == ["greeting", "split-request"]


def test_plain_output_names_each_deviation(start_socklab: Callable[..., SocklabProcess]) -> None:
    """A line server checked as length-framed: readable lines with expected and received."""
    server = start_socklab(["converter", "server", "--port", "0"])
    host, port = server.wait_listening()
    result = run_socklab(
        [
            "check",
            "converter-server",
            f"{host}:{port}",
            *("--framing", "length", "--only", "greeting"),
            *FAST,
        ]
    )
    assert result.returncode == NOT_CONFORMING
    lines = result.stdout.splitlines()
    assert lines[0] == f"Checking converter-server {host}:{port} (TCP, length framing)"
    assert lines[1].startswith("FAIL  greeting")
    assert lines[2] == (
        "      expected: \"\\x00\\x00\\x00CHi I'm your upper/lowercase converter. "
        'Message format U|L:<message>"'
    )
    assert lines[3].startswith("      received: \"Hi I'm your upper/lowercase converter.")
    assert lines[-1] == "1 of 1 checks failed: the program does not conform."


# The timeout is what a silent server costs per check: short where checks must wait it out,
# generous where they must pass (a loaded CI machine answers slowly).
@pytest.mark.parametrize(
    ("fault", "udp", "timeout", "expected"),
    [
        # greeting, upper-ascii, lower-ascii, upper-unicode, lower-unicode, split-request,
        # merged-requests, crlf, unknown-command, invalid-utf8, over-long, close, concurrent
        ("no-greeting", False, "1", "FPPPPPPPPPPPP"),
        ("ascii-case", False, "3", "PPPFFPPPPFPPP"),
        ("one-recv", False, "3", "PPPPPFFPPPFPP"),
        # No conversion answered: what needs one is not reached.
        ("hangs", False, "0.5", "PFNNNNNNNNFFN"),
        # Gone after its first answer: the next check finds it gone, nothing after is reached.
        ("crash-after-first", False, "3", "PPFNNNNNNNNNN"),
        # udp-lower, udp-upper-unicode, udp-peers, udp-no-amplification, udp-empty
        ("udp-amplify", True, "3", "PPPFF"),
        ("udp-one-peer", True, "0.5", "PFFFF"),
    ],
)
def test_broken_servers_get_a_verdict_for_every_check(
    fault: str, udp: bool, timeout: str, expected: str
) -> None:
    with running_fixture("check_broken_servers.py", fault) as port:
        status, report = check_json(
            f"127.0.0.1:{port}", *(["--udp"] if udp else []), "--timeout", timeout
        )
    assert verdicts(report) == expect(expected, UDP_CHECKS if udp else STREAM_CHECKS), report
    assert_counts_match(report, expected)
    assert status == NOT_CONFORMING
    assert report["conforming"] is False
    for check in report["checks"]:
        if check["verdict"] == "fail":
            assert check["expected"] and check["received"], check


def test_deviation_shows_expected_and_received_bytes() -> None:
    with running_fixture("check_broken_servers.py", "ascii-case") as port:
        _status, report = check_json(f"127.0.0.1:{port}", "--only", "upper-unicode")
    check = by_id(report, "upper-unicode")
    assert check["expected"] == '"STRASSE\\n"'
    assert check["received"] == '"STRAßE\\n"'
    assert "Unicode" in check["note"]


def test_amplifying_udp_reply_is_reported_with_its_size() -> None:
    with running_fixture("check_broken_servers.py", "udp-amplify") as port:
        _status, report = check_json(f"127.0.0.1:{port}", "--udp")
    check = by_id(report, "udp-no-amplification")
    assert "42 bytes" in check["expected"]
    assert "(60 bytes)" in check["received"]


def test_hanging_server_is_bounded_by_the_timeout() -> None:
    with running_fixture("check_broken_servers.py", "hangs") as port:
        _status, report = check_json(f"127.0.0.1:{port}", "--only", "close", *FAST)
    assert by_id(report, "close")["received"] == "nothing within 0.5 s"


def test_crashed_server_is_reported_once_as_refused() -> None:
    with running_fixture("check_broken_servers.py", "crash-after-first") as port:
        _status, report = check_json(f"127.0.0.1:{port}")
    # Reset or refused, depending on how far the process got in exiting; either way the check
    # says the server is gone, and every later one names it as the cause.
    lower = by_id(report, "lower-ascii")
    assert lower["verdict"] == "fail"
    assert "did the server crash?" in lower["received"] + lower["note"], lower
    assert by_id(report, "concurrent-clients")["received"] == (
        "not reached: lower-ascii failed first"
    )
    assert by_id(report, "concurrent-clients")["blocked_by"] == "lower-ascii"


# --- the lecture's live-coded server: raw framing behaviour, and naive -------------------------


def test_slide_server_checked_as_raw_fails_on_errors_only() -> None:
    with running_fixture("check_slide_server.py", "0") as port:
        status, report = check_json(f"127.0.0.1:{port}", "--framing", "raw")
    # It converts, split and merged requests behave as the raw framing specifies; it has no
    # error replies, and an undecodable request crashes it: that check says so, and the
    # checks after it are not reached.
    assert verdicts(report) == expect("PPPPPPPFFNN", CHECKS_BY_FRAMING["raw"]), report
    assert status == NOT_CONFORMING
    assert by_id(report, "invalid-utf8")["note"].endswith(
        f"After this check nothing listens at 127.0.0.1:{port} any more: did the server crash?"
    )
    assert by_id(report, "close")["received"] == "not reached: invalid-utf8 failed first"
    assert by_id(report, "unknown-command")["received"] == '"what"'
    assert by_id(report, "invalid-utf8")["received"] == "the connection was closed without a reply"


def test_slide_server_checked_as_line_framed() -> None:
    with running_fixture("check_slide_server.py", "0") as port:
        _status, report = check_json(f"127.0.0.1:{port}", "--timeout", "2")
    assert verdicts(report) == expect("FPPPPPFFFFNNN", STREAM_CHECKS), report
    assert (
        by_id(report, "greeting")["note"] == "The greeting must end with a newline (line framing)."
    )
    assert by_id(report, "merged-requests")["received"] == '"A\\nL:B\\n"'


def test_slide_server_serves_one_client_at_a_time() -> None:
    with running_fixture("check_slide_server.py", "0") as port:
        _status, report = check_json(
            f"127.0.0.1:{port}",
            "--framing",
            "raw",
            "--only",
            "concurrent-clients",
            "--timeout",
            "2",
        )
    check = by_id(report, "concurrent-clients")
    assert check["verdict"] == "fail"
    assert "one client at a time" in check["note"]


# --- usage ---------------------------------------------------------------------------------


def test_nothing_listening_is_one_line_and_network_status() -> None:
    port = free_port()
    result = run_socklab(["check", "converter-server", f"127.0.0.1:{port}", *FAST])
    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"socklab check converter-server: Connection to 127.0.0.1:{port} refused: nothing is listening there. "
        "Is the server running, and on this port?"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["127.0.0.1:99999"], "port 99999 is out of range"),
        (["127.0.0.1:1", "--timeout", "0"], "seconds must be more than 0"),
        (["127.0.0.1:1", "--only", "nonsense"], "unknown check nonsense"),
        (["127.0.0.1:1", "--framing", "raw", "--only", "crlf"], "does not apply to raw framing"),
        (["127.0.0.1:1", "--clients", "1000"], "more than the 64 a check opens at most"),
    ],
)
def test_bad_arguments_are_one_clear_line(args: list[str], message: str) -> None:
    result = run_socklab(["check", "converter-server", *args])
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_german_report(start_socklab: Callable[..., SocklabProcess]) -> None:
    server = start_socklab(["converter", "server", "--port", "0"])
    host, port = server.wait_listening()
    result = run_socklab(
        ["--lang", "de", "check", "converter-server", f"{host}:{port}", "--only", "greeting"]
    )
    assert result.returncode == 0
    assert result.stdout.splitlines()[-1] == "Alle 1 Prüfungen bestanden: das Programm ist konform."
