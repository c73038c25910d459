"""Lesson `handshake`: what the operating system does for connect(), accept() and close().

Seeing the SYN, SYN-ACK and ACK packets themselves needs a packet capture, which needs
administrator rights (raw sockets). Without them much is still visible in the OS's socket table:
a connection is ESTABLISHED before the server ever calls accept() (the kernel completed the
three-way handshake; accept() just takes the result from the queue), and after close() the
states FIN_WAIT/CLOSE_WAIT/TIME_WAIT show the FIN exchange. This lesson shows those states,
read with psutil for this process only, so it needs no privileges anywhere.
"""

from __future__ import annotations

import os
import socket
import time

from socklab.apps.demo_topics.narration import TIMEOUT_S, Say, heading, observe, step
from socklab.apps.demo_topics.ports import SocketRow, own_sockets, show_rows
from socklab.i18n import _

STATE_POLL_S = 0.01


def _wait_for_states(port: int, wanted: set[str]) -> list[SocketRow]:
    """The socket table once every state in `wanted` shows up (state changes are asynchronous)."""
    deadline = time.monotonic() + TIMEOUT_S
    rows = own_sockets(port)
    while not wanted <= {row.status for row in rows} and time.monotonic() < deadline:
        time.sleep(STATE_POLL_S)
        rows = own_sockets(port)
    return rows


def demo_handshake(say: Say) -> bool:
    heading(say, _("The TCP handshake: what connect(), accept() and close() make the OS do"))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(TIMEOUT_S)
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
        step(say, _("client: connect() returned; the server has NOT called accept() yet:"))
        before_accept = _wait_for_states(port, {"LISTEN", "ESTABLISHED"})
        show_rows(say, before_accept)
        observe(
            say,
            _(
                "the connection is ESTABLISHED already: the OS answered SYN with SYN-ACK and got the ACK; accept() only takes the finished connection from the queue."
            ),
        )
        connection, _peer = listener.accept()
        client.close()
        step(say, _("client: close() sends FIN; the server has not closed yet:"))
        half_closed = _wait_for_states(port, {"CLOSE_WAIT"})
        show_rows(say, half_closed)
        eof = connection.recv(1024)
        step(
            say,
            _("server: recv() -> {data!r}: the FIN arrived as the end of the stream").format(
                data=eof
            ),
        )
        connection.close()
        step(say, _("server: close() sends its FIN; the client's side waits in TIME_WAIT:"))
        closed = _wait_for_states(port, {"TIME_WAIT"})
        show_rows(say, closed)
        observe(
            say,
            _(
                "TIME_WAIT keeps the old connection's numbers reserved for a while (2 x MSL) so late packets cannot confuse a new one."
            ),
        )
    privileged = hasattr(os, "geteuid") and os.geteuid() == 0
    if privileged:
        step(
            say,
            _(
                "To see the packets themselves (SYN, SYN-ACK, ACK, FIN), capture the loopback interface: 'tcpdump -i lo' or Wireshark."
            ),
        )
    else:
        step(
            say,
            _(
                "Seeing the packets themselves (SYN, SYN-ACK, ACK, FIN) needs a capture with administrator rights: 'sudo tcpdump -i lo' or Wireshark."
            ),
        )
    return (
        any(row.status == "ESTABLISHED" for row in before_accept)
        and any(row.status == "CLOSE_WAIT" for row in half_closed)
        and eof == b""
        and any(row.status == "TIME_WAIT" for row in closed)
    )
