"""Lesson `handshake`: what the operating system does for connect(), accept() and close().

Seeing the SYN, SYN-ACK and ACK packets themselves needs a packet capture, which needs
administrator rights (raw sockets). Without them much is still visible in the OS's socket table:
a connection is ESTABLISHED before the server ever calls accept() (the kernel completed the
three-way handshake; accept() just takes the result from the queue), and after close() the
states FIN_WAIT/CLOSE_WAIT/TIME_WAIT show the FIN exchange. This lesson shows those states,
read with psutil, so it needs no privileges on Linux.

With the rights to capture (root or CAP_NET_RAW on Linux) and socklab's capture tool present,
the lesson then captures one more connection on the loopback interface and draws its packets
as a ladder: SYN, SYN+ACK, ACK, the FINs and their ACKs. The capture tool is looked up when the
lesson runs, so the lesson works (with its explanation) where it is missing or not allowed.
"""

from __future__ import annotations

import importlib
import os
import socket
import sys
import threading
import time
from typing import Any

from socklab.apps.demo_topics.narration import TIMEOUT_S, Say, heading, observe, step
from socklab.apps.demo_topics.ports import SocketRow, own_sockets, show_rows, system_wide_table
from socklab.errors import SocklabError
from socklab.i18n import _

STATE_POLL_S = 0.01
# The capture window for the ladder: the connection takes well under a millisecond on loopback;
# the capture ends by its own duration because the number of packets (delayed ACKs, piggybacked
# FINs) is the kernel's choice.
CAPTURE_S = 1.0


def _wait_for_states(port: int, wanted: set[str]) -> list[SocketRow]:
    """The socket table once every state in `wanted` shows up (state changes are asynchronous).

    Where only our own sockets are visible, the table is read once: waiting could not help.
    """
    deadline = time.monotonic() + (TIMEOUT_S if system_wide_table() else 0.0)
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
    ladder = capture_ladder()
    if ladder is not None:
        step(say, _("captured on the loopback interface, packet by packet:"))
        for line in ladder:
            step(say, "   " + line)
        observe(
            say,
            _(
                "SYN, SYN+ACK, ACK open the connection before any data; each side's FIN is answered by an ACK."
            ),
        )
    else:
        step(
            say,
            _(
                "Seeing the packets themselves (SYN, SYN-ACK, ACK, FIN) needs a capture with administrator rights: 'sudo socklab capture', tcpdump or Wireshark."
            ),
        )
    if not system_wide_table():
        # Sockets without an owner (not yet accepted, TIME_WAIT) are hidden from us here.
        step(
            say,
            _("This system shows only this program's own sockets without administrator rights."),
        )
        return eof == b""
    return (
        any(row.status == "ESTABLISHED" for row in before_accept)
        and any(row.status == "CLOSE_WAIT" for row in half_closed)
        and eof == b""
        and any(row.status == "TIME_WAIT" for row in closed)
    )


def _capture_tools() -> tuple[Any, Any, Any] | None:
    """socklab's capture modules, where present and allowed to run (Linux, root)."""
    if not sys.platform.startswith("linux") or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    try:
        return (
            importlib.import_module("socklab.tools.capture.runner"),
            importlib.import_module("socklab.tools.capture.selection"),
            importlib.import_module("socklab.tools.capture.ladder"),
        )
    except ImportError:
        return None


def capture_ladder() -> list[str] | None:
    """One connection (open, close) captured on loopback, as ladder lines; None if impossible."""
    tools = _capture_tools()
    if tools is None:
        return None
    runner, selection, ladder = tools
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(TIMEOUT_S)
        port = listener.getsockname()[1]
        ready = threading.Event()
        packets: list[Any] = []
        failures: list[BaseException] = []
        options = runner.CaptureOptions(
            interface="lo",
            selection=selection.PacketSelection(protocols=frozenset({"tcp"}), port=port),
            duration_s=CAPTURE_S,
        )

        def capture() -> None:
            try:
                runner.run_capture(
                    options,
                    lambda _ready: ready.set(),
                    lambda packet, _frame: packets.append(packet),
                )
            except (SocklabError, OSError) as exc:  # no rights after all, no loopback device
                failures.append(exc)
            finally:
                ready.set()

        thread = threading.Thread(target=capture, daemon=True)
        thread.start()
        ready.wait(TIMEOUT_S)
        if failures:
            return None
        client = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
        connection, _peer = listener.accept()
        client.close()
        connection.recv(1)
        connection.close()
        thread.join(CAPTURE_S + TIMEOUT_S)
    if failures or not packets:
        return None
    builder = ladder.LadderBuilder()
    lines = []
    for packet in packets:
        rung = builder.add(packet)
        arrow = _("client ──▶ server") if rung.from_client else _("client ◀── server")
        numbers = f"seq={rung.relative_seq}" + (
            f" ack={rung.relative_ack}" if rung.relative_ack is not None else ""
        )
        lines.append(f"{arrow}  {rung.flags:<8} {numbers}")
    return lines
