"""Lesson `timeout`: blocking calls, settimeout(), socket.timeout caught, and the call retried.

As the lecture puts it: accept() and recv() block until their event happens; a timeout ends
the wait with a `socket.timeout` exception, which the program catches to keep control, and
then starts the call again. The "server" here is the lesson itself, so it answers exactly when
the client's first recv() has timed out: the order of events is certain, not a race.
"""

from __future__ import annotations

import socket
import threading

from socklab.apps.demo_topics.narration import TIMEOUT_S, Say, heading, observe, step
from socklab.i18n import _, format_number

WAIT_S = 0.5  # long enough to notice, short enough for the tour


def demo_timeout(say: Say) -> bool:
    heading(say, _("Timeouts: a blocking recv() that gives up, and is started again"))
    first_timed_out = threading.Event()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(WAIT_S)
        step(
            say,
            _(
                "server: settimeout({seconds}) on the listening socket, accept() with no client yet"
            ).format(seconds=WAIT_S),
        )
        try:
            listener.accept()
            return False  # nobody connected: accept() cannot have succeeded
        except TimeoutError:  # socket.timeout is TimeoutError since Python 3.10
            step(
                say,
                _(
                    "server: accept() raised socket.timeout after {seconds} s: caught, the program still runs"
                ).format(seconds=format_number(WAIT_S, decimals=None)),
            )
        listener.settimeout(TIMEOUT_S)
        with socket.create_connection(listener.getsockname(), timeout=TIMEOUT_S) as client:
            connection, _peer = listener.accept()

            def answer_late() -> None:
                with connection:
                    if first_timed_out.wait(TIMEOUT_S):
                        connection.sendall(b"late answer\n")

            server = threading.Thread(target=answer_late, daemon=True)
            server.start()
            client.settimeout(WAIT_S)
            step(
                say,
                _("client: settimeout({seconds}), then recv() while the server is silent").format(
                    seconds=WAIT_S
                ),
            )
            received = b""
            attempts = 0
            while not received and attempts < 5:
                attempts += 1
                try:
                    received = client.recv(1024)
                except TimeoutError:
                    step(
                        say,
                        _(
                            "client: attempt {attempt}: recv() raised socket.timeout: no data yet, try again"
                        ).format(attempt=attempts),
                    )
                    first_timed_out.set()
                    continue
                step(
                    say,
                    _("client: attempt {attempt}: recv() returned {data!r}").format(
                        attempt=attempts, data=received
                    ),
                )
            server.join(TIMEOUT_S)
    observe(
        say,
        _(
            "a timeout turns an endless wait into an exception the program catches; it keeps control and can retry, or give up after a few attempts."
        ),
    )
    return received == b"late answer\n" and attempts == 2
