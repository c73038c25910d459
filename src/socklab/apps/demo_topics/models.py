"""Lesson `models`: the same two clients against every concurrency model in RUNTIMES.

Client A connects and stays connected without sending; client B then connects and sends one
request. An iterative server serves one connection at a time, so B waits (not even the
greeting comes) until A leaves; a concurrent model (threads, selectors, an event loop) answers
B at once. Each model is asked exactly the same, and the lesson reports what it observed, so a
model added to the registry is shown without touching this file.
"""

from __future__ import annotations

import contextlib
import socket

from socklab.apps.demo_topics.narration import TIMEOUT_S, Say, heading, observe, step
from socklab.i18n import _
from socklab.runtimes import RUNTIMES, serve
from socklab.runtimes.config import ServerConfig

# How long B waits for its greeting while A is connected: far above a loopback round trip
# (microseconds), far below the tour's budget.
PATIENCE_S = 0.5


def _read_lines(sock: socket.socket, received: bytearray, count: int) -> None:
    """Receive into `received` until it holds `count` lines (replies may arrive merged)."""
    while received.count(b"\n") < count:
        chunk = sock.recv(1024)
        if not chunk:
            return
        received += chunk


def _try_model(model: str) -> tuple[bool, bool]:
    """(B served while A was connected, B served in the end) for `model`."""
    received = bytearray()
    with serve(model, ServerConfig(port=0)) as handle:
        first = socket.create_connection(handle.address, timeout=TIMEOUT_S)
        second = socket.create_connection(handle.address, timeout=TIMEOUT_S)
        with first, second:
            second.sendall(b"U:second client\n")
            second.settimeout(PATIENCE_S)
            with contextlib.suppress(TimeoutError):
                _read_lines(second, received, 1)  # the greeting, if B is served now
            concurrent = received.startswith(b"Hi")
            first.close()  # A leaves: an iterative server now turns to B
            second.settimeout(TIMEOUT_S)
            _read_lines(second, received, 2)
    lines = bytes(received).split(b"\n")
    return concurrent, len(lines) >= 2 and lines[1] == b"SECOND CLIENT"


def demo_models(say: Say) -> bool:
    heading(say, _("Concurrency models: client A stays connected, client B sends a request"))
    all_served = True
    for name, info in RUNTIMES.items():
        if "tcp" not in info.transports:
            continue
        concurrent, served = _try_model(name)
        all_served = all_served and served
        if concurrent:
            step(
                say,
                _("{model}: B answered while A was still connected (concurrent)").format(
                    model=name
                ),
            )
        else:
            step(say, _("{model}: B waited until A left (one client at a time)").format(model=name))
    observe(
        say,
        _(
            "an iterative server serves one connection at a time; threads, selectors and event loops serve many at once."
        ),
    )
    return all_served
