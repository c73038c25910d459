"""The command itself: entry points, help, the guided demo, errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys

from tests.socklab_process import child_environment, run_socklab


def test_python_dash_m_and_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "socklab", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        env=child_environment(),
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("socklab ")


def test_help_lists_the_course_programs() -> None:
    result = run_socklab(["--help"])
    assert result.returncode == 0
    for command in ("hello", "upper", "converter", "demo"):
        assert command in result.stdout


def test_no_command_prints_help_and_usage_status() -> None:
    result = run_socklab([])
    assert result.returncode == 2
    assert "usage: socklab" in result.stdout


def test_unknown_option_is_one_error_and_a_hint() -> None:
    result = run_socklab(["converter", "client", "--frobnicate"])
    assert result.returncode == 2
    # Reported by the command it was given to, in one line: no usage block first.
    assert result.stderr == (
        "socklab converter client: unrecognized arguments: --frobnicate. "
        "Try 'socklab converter client --help'.\n"
    )


def test_demo_runs_the_tour_by_itself() -> None:
    result = run_socklab(["demo"], timeout_s=60)
    assert result.returncode == 0, result.stdout + result.stderr
    for expected in (
        "Server: Connection accepted from 127.0.0.1:",
        "From Server: HELLO SOCKETS",
        "STRASSE",
        "Observe:",
    ):
        assert expected in result.stdout
    assert result.stderr == ""
