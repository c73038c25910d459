"""`socklab check converter-client` against socklab's own client, the slides' client and
deliberately broken clients: each run starts the real `socklab check` command, which starts the
client under test against its scripted server on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.check_processes import fixture_command
from tests.socklab_process import SocklabProcess, run_socklab, socklab_command

NOT_CONFORMING = 7
CLIENT_CHECKS = [
    "connects",
    "requests",
    "greeting-read",
    "replies-shown",
    "error-reply",
    "closes-cleanly",
    "exits",
]


def check_client(*args: str, command: list[str]) -> tuple[int, dict[str, Any]]:
    result = run_socklab(
        ["check", "converter-client", *args, "--json", "--", *command], timeout_s=60
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def failed_ids(report: dict[str, Any]) -> set[str]:
    return {check["id"] for check in report["checks"] if check["verdict"] == "fail"}


def by_id(report: dict[str, Any], check_id: str) -> dict[str, Any]:
    return next(check for check in report["checks"] if check["id"] == check_id)


def test_socklab_client_reading_stdin_conforms() -> None:
    status, report = check_client(
        command=[*socklab_command(), "converter", "client", "--port", "{port}"]
    )
    assert failed_ids(report) == set(), report
    assert status == 0
    assert [check["id"] for check in report["checks"]] == CLIENT_CHECKS
    assert report["subject"] == "converter-client"
    # The default input: U:hello (answered with E: on purpose), L:WORLD, U:straße.
    assert by_id(report, "requests")["received"] == '"U:hello", "L:WORLD", "U:straße"'
    assert by_id(report, "replies-shown")["received"] == "all 2 shown"


def test_socklab_client_with_requests_as_arguments_conforms() -> None:
    command = [*socklab_command(), "converter", "client", "--host", "{host}", "--port", "{port}"]
    status, report = check_client(command=[*command, "U:one", "L:TWO", "U:three", "C:"])
    assert failed_ids(report) == set(), report
    assert status == 0
    assert by_id(report, "closes-cleanly")["received"] == "sent C:"


@pytest.mark.parametrize("framing", ["length", "raw"])
def test_socklab_client_in_other_framings_conforms(framing: str) -> None:
    command = [*socklab_command(), "converter", "client", "--port", "{port}", "--framing", framing]
    status, report = check_client(
        "--framing", framing, "--input", "U:one", "--input", "L:TWO", command=command
    )
    assert failed_ids(report) == set(), report
    assert status == 0


def test_port_also_comes_from_the_environment() -> None:
    script = (
        "import os, subprocess, sys;"
        "sys.exit(subprocess.call(sys.argv[1:] + ['--port', os.environ['SOCKLAB_CHECK_PORT'],"
        " '--host', os.environ['SOCKLAB_CHECK_HOST']]))"
    )
    command = [sys.executable, "-c", script, *socklab_command(), "converter", "client"]
    status, report = check_client(command=command)
    assert failed_ids(report) == set(), report
    assert status == 0


@pytest.mark.parametrize(
    ("fault", "expected_failures"),
    [
        ("good", set()),
        ("no-newline", {"requests", "replies-shown"}),
        ("bad-command", {"requests", "replies-shown", "error-reply"}),
        ("skips-greeting", {"greeting-read", "replies-shown"}),
        ("crash-on-error", {"replies-shown", "error-reply", "exits"}),
        ("hangs", {"requests", "replies-shown", "error-reply", "closes-cleanly", "exits"}),
        ("refuses", set(CLIENT_CHECKS)),
    ],
)
def test_broken_clients_show_their_deviations(fault: str, expected_failures: set[str]) -> None:
    command = fixture_command("check_broken_clients.py", fault, "{host}", "{port}")
    status, report = check_client("--timeout", "3", command=command)
    assert failed_ids(report) == expected_failures, report
    assert status == (NOT_CONFORMING if expected_failures else 0)


def test_crashing_client_is_shown_with_its_error() -> None:
    command = fixture_command("check_broken_clients.py", "crash-on-error", "{host}", "{port}")
    _status, report = check_client(command=command)
    assert by_id(report, "error-reply")["received"] == (
        "crashed: RuntimeError: server said "
        "E:error sent on purpose by socklab check; a client must survive it"
    )


def test_client_one_reply_behind_is_named() -> None:
    command = fixture_command("check_broken_clients.py", "skips-greeting", "{host}", "{port}")
    _status, report = check_client(command=command)
    assert by_id(report, "greeting-read")["received"] == (
        "one reply behind: the greeting was taken as the first reply"
    )
    assert by_id(report, "replies-shown")["received"] == '1 of 2 shown; missing "STRASSE"'


def test_unterminated_request_is_named() -> None:
    command = fixture_command("check_broken_clients.py", "no-newline", "{host}", "{port}")
    _status, report = check_client(command=command)
    assert by_id(report, "requests")["received"] == "the last request does not end with a newline"


def test_hanging_client_is_killed_at_the_timeout() -> None:
    command = fixture_command("check_broken_clients.py", "hangs", "{host}", "{port}")
    _status, report = check_client("--timeout", "1", command=command)
    assert by_id(report, "exits")["received"] == "still running after 1 s (killed)"


def test_slide_client_deadlocks_against_line_framing() -> None:
    """The slides' client sends `U:lower` with no newline, then waits for a reply forever."""
    command = fixture_command("check_slide_client.py", "{host}", "{port}")
    status, report = check_client("--timeout", "2", command=command)
    assert failed_ids(report) == {
        "requests",
        "replies-shown",
        "error-reply",
        "closes-cleanly",
        "exits",
    }
    assert status == NOT_CONFORMING
    assert "does not end with a newline" in by_id(report, "requests")["received"]


def test_missing_command_is_a_usage_error() -> None:
    result = run_socklab(["check", "converter-client", "--"])
    assert result.returncode == 2
    assert "give the client command after '--'" in result.stderr


def test_unknown_program_is_one_line() -> None:
    result = run_socklab(["check", "converter-client", "--", "no-such-client-program-here"])
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "socklab check converter-client: the client command 'no-such-client-program-here' was not found"
    )


def test_plain_output_for_a_terminal_less_run() -> None:
    command = fixture_command("check_broken_clients.py", "bad-command", "{host}", "{port}")
    result = run_socklab(["check", "converter-client", "--", *command], timeout_s=60)
    assert result.returncode == NOT_CONFORMING
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Checking converter-client ")
    assert "FAIL  requests" in result.stdout
    assert any(
        line.startswith('      received: "X:U:hello" does not start with U:, L: or C:;')
        for line in lines
    ), lines
    assert lines[-1] == "3 of 7 checks failed: the program does not conform."


def test_terminal_gets_a_table(tmp_path: Any) -> None:
    """On a terminal the report is a rich table; run in-process with an injected environment."""
    import io

    from socklab.cli.environment import Environment
    from socklab.cli.main import main

    stdout, stderr = io.StringIO(), io.StringIO()
    env = Environment(
        stdin=io.StringIO(),
        stdout=stdout,
        stderr=stderr,
        environ={"LANG": "C.UTF-8"},
        stdin_isatty=False,
        stdout_isatty=True,
    )
    command = fixture_command("check_broken_clients.py", "skips-greeting", "{host}", "{port}")
    status = main(["check", "converter-client", "--", *command], env)
    assert status == NOT_CONFORMING
    table = stdout.getvalue()
    assert "greeting-read" in table and "one reply behind" in table
    assert "Expected" in table and "Received" in table
    assert table.rstrip().endswith("2 of 7 checks failed: the program does not conform.")


def test_stopping_the_checker_stops_the_client(
    start_socklab: Callable[..., SocklabProcess], tmp_path: Path
) -> None:
    """SIGTERM to `socklab check` must not leave the client (in its own session) running."""
    pidfile = tmp_path / "client.pid"
    command = fixture_command("check_broken_clients.py", "hangs", "{host}", "{port}")
    checker = start_socklab(
        ["check", "converter-client", "--timeout", "60", "--", *command],
        env={"CHECK_FIXTURE_PIDFILE": str(pidfile)},
    )
    deadline = time.monotonic() + 15
    while not pidfile.exists():
        assert time.monotonic() < deadline, "the client never started"
        time.sleep(0.05)
    client_pid = int(pidfile.read_text())
    checker.send_signal(signal.SIGTERM)
    assert checker.wait() == 130
    try:
        os.kill(client_pid, 0)
    except ProcessLookupError:
        return
    os.kill(client_pid, signal.SIGKILL)
    raise AssertionError(f"client {client_pid} outlived the checker")


def test_socklab_udp_client_conforms() -> None:
    command = [*socklab_command(), "converter", "client", "--udp", "--port", "{port}"]
    status, report = check_client("--udp", command=command)
    assert failed_ids(report) == set(), report
    assert status == 0
    assert [check["id"] for check in report["checks"]] == [
        "connects",
        "requests",
        "replies-shown",
        "error-reply",
        "exits",
    ]
    assert (report["transport"], report["framing"]) == ("udp", "datagram")


def test_slide_udp_client_ends_with_a_bad_request() -> None:
    """The live-coded UDP client says goodbye with `Bye`, which is no request."""
    command = fixture_command("course_programs.py", "live-udp-client", "{port}")
    status, report = check_client("--udp", command=command)
    assert failed_ids(report) == {"requests"}, report
    assert status == NOT_CONFORMING
    assert by_id(report, "requests")["received"] == '"Bye" does not start with U:, L: or C:'


def test_tcp_client_checked_as_udp_sends_no_datagram() -> None:
    command = [*socklab_command(), "converter", "client", "--port", "{port}"]
    _status, report = check_client("--udp", command=command)
    assert by_id(report, "connects")["received"].startswith(
        "no datagram; the client exited with status 3"
    )
