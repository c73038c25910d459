"""Deadlines counted in sweeps never fire before their configured time (at most one sweep late)."""

from __future__ import annotations

import pytest

from socklab.protocol.closing import CloseReason
from socklab.runtimes.config import ServerConfig
from socklab.runtimes.deadlines import Deadlines

# The sweep names the deadline; the session makes the notice (protocol/closing.py).
IDLE_TIMEOUT_REPLY = CloseReason.IDLE_TIMEOUT
MESSAGE_TIMEOUT_REPLY = CloseReason.MESSAGE_TIMEOUT
WRITE_TIMEOUT_REPLY = CloseReason.WRITE_TIMEOUT


@pytest.mark.parametrize(
    ("condition", "reply"),
    [
        ({"partial_message": True, "output_blocked": False}, MESSAGE_TIMEOUT_REPLY),
        ({"partial_message": False, "output_blocked": True}, WRITE_TIMEOUT_REPLY),
        ({"partial_message": False, "output_blocked": False}, IDLE_TIMEOUT_REPLY),
    ],
)
def test_a_two_second_deadline_fires_at_the_third_sweep_that_sees_it(
    condition: dict[str, bool], reply: CloseReason
) -> None:
    # The first sweep may come right after the condition began, so two sweeps are not yet
    # two seconds: firing there would cut a client that is within its limit.
    config = ServerConfig(idle_timeout_s=2, message_timeout_s=2, write_timeout_s=2)
    deadlines = Deadlines(config)
    outcomes = [deadlines.sweep(bytes_received=0, **condition) for _ in range(3)]
    assert outcomes == [None, None, reply]


def test_progress_restarts_the_idle_deadline_but_not_the_message_deadline() -> None:
    deadlines = Deadlines(ServerConfig(idle_timeout_s=2, message_timeout_s=2))
    outcomes = [
        deadlines.sweep(bytes_received=sent, partial_message=True, output_blocked=False)
        for sent in (1, 2, 3)
    ]
    assert outcomes == [None, None, MESSAGE_TIMEOUT_REPLY]


def test_a_stalled_message_is_named_once_at_the_third_sweep_that_sees_it() -> None:
    # The third sweep: held at least two seconds, once per message (issue 16).
    deadlines = Deadlines(ServerConfig(message_timeout_s=30))
    stalled = []
    for _ in range(6):
        assert deadlines.sweep(bytes_received=7, partial_message=True, output_blocked=False) is None
        stalled.append(deadlines.message_stalled_now)
    assert stalled == [False, False, True, False, False, False]
    deadlines.sweep(bytes_received=8, partial_message=False, output_blocked=False)
    again = []
    for _ in range(3):
        deadlines.sweep(bytes_received=9, partial_message=True, output_blocked=False)
        again.append(deadlines.message_stalled_now)
    assert again == [False, False, True]
