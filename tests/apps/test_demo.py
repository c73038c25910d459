"""`socklab demo TOPIC`: each lesson runs alone, narrates its key lines, exits 0, in bounded time."""

from __future__ import annotations

import importlib.util
import os
import re

import pytest

from tests.socklab_process import run_socklab

# Counts packets on loopback: alone, after the parallel part of `make test`.
pytestmark = pytest.mark.serial

KEY_LINES = {
    "hello": [r"Server: Received: Hi server!", r"accept\(\) returns a NEW socket"],
    "stream": [
        r"server recv\(\) returned: b'L:UPPER\\nL:CONT\\n'",
        r"replies: b'upper\\nl:cont\\n'",
        r"replies: b'upper\\ncont\\n'",
        r"is wrong",
    ],
    "ports": [
        r"recvfrom\(\) -> b'U:from one' from 127\.0\.0\.1:\d+",
        r"recvfrom\(\) -> b'U:from two' from 127\.0\.0\.1:\d+",
        r"127\.0\.0\.1:\d+ +- +LISTEN",
        r"the server has 3 sockets on port \d+",
    ],
    "handshake": [r"ESTABLISHED", r"CLOSE_WAIT", r"TIME_WAIT", r"recv\(\) -> b''"],
    "timeout": [
        r"accept\(\) raised socket\.timeout",
        r"attempt 1: recv\(\) raised socket\.timeout",
        r"attempt 2: recv\(\) returned b'late answer\\n'",
    ],
    "models": [r"asyncio: B answered while A was still connected"],
}


@pytest.mark.parametrize("topic", sorted(KEY_LINES))
def test_topic_runs_alone_and_shows_its_point(topic: str) -> None:
    result = run_socklab(["demo", topic], timeout_s=60)
    assert result.returncode == 0, result.stdout + result.stderr
    for pattern in KEY_LINES[topic]:
        assert re.search(pattern, result.stdout), f"{pattern!r} missing in:\n{result.stdout}"
    assert result.stderr == ""


def test_full_tour_runs_every_topic_in_german() -> None:
    result = run_socklab(["--lang", "de", "demo"], timeout_s=60)
    assert result.returncode == 0, result.stdout + result.stderr
    for heading in ("Warum Framing wichtig ist", "Demultiplexing", "Der TCP-Handshake", "Timeouts"):
        assert heading in result.stdout
    assert "Observe" not in result.stdout


def test_unknown_topic_is_a_usage_error() -> None:
    result = run_socklab(["demo", "nonsense"])
    assert result.returncode == 2
    assert "invalid choice: 'nonsense'" in result.stderr


def test_handshake_draws_the_captured_ladder_where_it_may_capture() -> None:
    result = run_socklab(["demo", "handshake"], timeout_s=60)
    assert result.returncode == 0, result.stdout + result.stderr
    may_capture = os.geteuid() == 0 and importlib.util.find_spec("socklab.tools") is not None
    if may_capture and importlib.util.find_spec("socklab.tools.capture") is not None:
        assert re.search(r"client ──▶ server  SYN +seq=0\n", result.stdout), result.stdout
        assert re.search(r"client ◀── server  SYN\+ACK +seq=0 ack=1", result.stdout)
        assert "FIN" in result.stdout.split("packet by packet:")[1]
    else:
        assert "needs a capture with administrator rights" in result.stdout
