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
from tests.tools.check_verdicts import assert_counts_match, verdicts
from tests.tools.check_verdicts import expect as expect_verdicts

NOT_CONFORMING = 7
CLIENT_CHECKS = [
    "connects",
    "requests",
    "greeting-read",
    "error-reply",
    "replies-shown",
    "closes-cleanly",
    "exits",
]

UDP_CLIENT_CHECKS = ["connects", "requests", "error-reply", "replies-shown", "exits"]


def check_client(*args: str, command: list[str]) -> tuple[int, dict[str, Any]]:
    result = run_socklab(
        ["check", "converter-client", *args, "--json", "--", *command], timeout_s=60
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def failed_ids(report: dict[str, Any]) -> set[str]:
    return {check["id"] for check in report["checks"] if check["verdict"] == "fail"}


def expect(letters: str, ids: list[str] | None = None) -> dict[str, str]:
    return expect_verdicts(letters, CLIENT_CHECKS if ids is None else ids)


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
    ("fault", "expected"),
    [
        # connects, requests, greeting-read, error-reply, replies-shown, closes-cleanly, exits
        ("good", "PPPPPPP"),
        ("no-newline", "PFNNNPP"),
        ("bad-command", "PFNNNPP"),
        ("skips-greeting", "PPFPNPP"),
        # It crashes on the E: (its only conversion reply): the replies are not reached.
        ("crash-on-error", "PPNFNPF"),
        ("hangs", "PFNNNNF"),
        ("refuses", "FNNNNNF"),
    ],
)
def test_broken_clients_get_a_verdict_for_every_check(fault: str, expected: str) -> None:
    command = fixture_command("check_broken_clients.py", fault, "{host}", "{port}")
    status, report = check_client("--timeout", "3", command=command)
    assert verdicts(report) == expect(expected), report
    assert status == (NOT_CONFORMING if "F" in expected else 0)
    assert_counts_match(report, expected)


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
    # The missing last reply is that root cause again: reported once.
    assert by_id(report, "replies-shown")["received"] == "not reached: greeting-read failed first"
    assert by_id(report, "replies-shown")["blocked_by"] == "greeting-read"


def test_unterminated_request_is_named() -> None:
    command = fixture_command("check_broken_clients.py", "no-newline", "{host}", "{port}")
    _status, report = check_client(command=command)
    assert by_id(report, "requests")["received"] == (
        'no newline after the requests: 3 requests ran together as "U:helloL:WORLDU:straße"'
    )


def test_client_of_unknown_commands_only_is_not_told_no_e_was_sent() -> None:
    """It got the server's ordinary `E:` for `X:`, but never a conversion request, so never the
    checker's deliberate `E:`: the note says exactly that (issue 16: every note true)."""
    script = (
        "import socket, sys\n"
        "s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)\n"
        "f = s.makefile('rb')\n"
        "f.readline()\n"
        "s.sendall(b'X:1\\n')\n"
        "print(f.readline().decode().strip())\n"
        "s.sendall(b'C:\\n')\n"
    )
    result = run_socklab(
        [
            "check",
            "converter-client",
            "--json",
            "--",
            sys.executable,
            "-c",
            script,
            "{host}",
            "{port}",
        ],
        timeout_s=60,
    )
    report = json.loads(result.stdout)
    assert result.returncode == NOT_CONFORMING
    assert verdicts(report) == expect("PFNNNPP"), report
    assert by_id(report, "error-reply")["received"] == (
        "not reached: the client sent no conversion request while connected, so the checker's"
        " deliberate 'E:' reply was never sent"
    )


def test_hanging_client_is_killed_at_the_timeout() -> None:
    command = fixture_command("check_broken_clients.py", "hangs", "{host}", "{port}")
    _status, report = check_client("--timeout", "1", command=command)
    assert by_id(report, "exits")["received"] == "still running after 1 s (killed)"


def test_slide_client_deadlocks_against_line_framing() -> None:
    """The slides' client sends `U:lower` with no newline, then waits for a reply forever."""
    command = fixture_command("check_slide_client.py", "{host}", "{port}")
    status, report = check_client("--timeout", "2", command=command)
    assert verdicts(report) == expect("PFNNNNF"), report
    assert status == NOT_CONFORMING
    assert by_id(report, "requests")["received"] == (
        'the last request "U:lower" does not end with a newline'
    )
    # Killed by the checker at the timeout: how it would have closed was never seen.
    assert by_id(report, "closes-cleanly")["received"] == (
        "not reached: the client was still running at the timeout, so it never closed by itself"
    )
    assert by_id(report, "exits")["received"] == "still running after 2 s (killed)"


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
    assert "----  replies-shown   shows each reply" in lines
    assert "      not reached: requests failed first" in lines
    assert lines[-1] == "1 of 7 checks failed, 3 not reached: the program does not conform."


def test_terminal_gets_live_lines_with_progress(tmp_path: Any) -> None:
    """On a terminal each check's line comes with colour, after a progress line the result
    overwrites; run in-process with an injected environment."""
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
    shown = stdout.getvalue()
    assert shown.startswith("\r\x1b[Krunning ")  # the progress line while the client runs
    assert "\x1b[1;31mFAIL\x1b[0m  greeting-read" in shown
    assert "      received: one reply behind: the greeting was taken as the first reply" in shown
    assert shown.rstrip().endswith(
        "1 of 7 checks failed, 1 not reached: the program does not conform."
    )


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
    assert [check["id"] for check in report["checks"]] == UDP_CLIENT_CHECKS
    assert (report["transport"], report["framing"]) == ("udp", "datagram")


def test_slide_udp_client_ends_with_a_bad_request() -> None:
    """The live-coded UDP client says goodbye with `Bye`, which is no request."""
    command = fixture_command("course_programs.py", "live-udp-client", "{port}")
    status, report = check_client("--udp", command=command)
    # It survived the E: to its U:lower; its replies are not judged, as one request was bad.
    assert verdicts(report) == expect("PFPNP", UDP_CLIENT_CHECKS), report
    assert status == NOT_CONFORMING
    assert by_id(report, "requests")["received"] == '"Bye" does not start with U:, L: or C:'


def test_tcp_client_checked_as_udp_sends_no_datagram() -> None:
    command = [*socklab_command(), "converter", "client", "--port", "{port}"]
    _status, report = check_client("--udp", command=command)
    assert by_id(report, "connects")["received"].startswith(
        "no datagram; the client exited with status 3"
    )
