"""Shortages inside the threads model, made to happen on purpose (issue 15, §5).

Under `prlimit --as` they come when they please (tests/robustness/test_exhaustion.py has that
run); here each is forced in-process: a MemoryError while answering one client, and a client
thread that cannot start. Either way the client gets an `E:` line, the operator one alert, the
other clients are served, and no exception escapes a thread.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from socklab.clients.converter_client import StreamConverterClient
from socklab.protocol.session import ConverterSession
from socklab.runtimes import serve
from socklab.runtimes.config import MemoryExhausted, ServerAlert, ServerConfig, ThreadsExhausted

TIMEOUT_S = 5.0


@pytest.fixture
def escaped_thread_exceptions(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[BaseException]]:
    """Exceptions that end a thread (what would print a traceback to the operator)."""
    escaped: list[BaseException] = []

    def record(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            escaped.append(args.exc_value)

    monkeypatch.setattr(threading, "excepthook", record)
    yield escaped


def read_until_closed(sock: socket.socket) -> bytes:
    sock.settimeout(TIMEOUT_S)
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def test_memory_error_while_answering_is_an_e_line_and_an_alert(
    monkeypatch: pytest.MonkeyPatch, escaped_thread_exceptions: list[BaseException]
) -> None:
    exchange = ConverterSession.exchange

    def exchange_or_run_out(self: ConverterSession, data: bytes) -> bytes:
        if b"boom" in data:
            raise MemoryError
        return exchange(self, data)

    monkeypatch.setattr(ConverterSession, "exchange", exchange_or_run_out)
    alerts: list[ServerAlert] = []
    with serve("threads", ServerConfig(port=0, alert=alerts.append)) as handle:
        with socket.create_connection(handle.address, timeout=TIMEOUT_S) as sock:
            sock.recv(4096)  # the greeting
            sock.sendall(b"U:boom\n")
            assert read_until_closed(sock) == b"E:server out of memory, try again later\n"
        with StreamConverterClient(*handle.address, timeout_s=TIMEOUT_S) as client:
            assert client.request(b"U:fine") == b"FINE"
    assert alerts == [MemoryExhausted(1)]
    assert escaped_thread_exceptions == []


def test_a_thread_that_cannot_start_refuses_busy_with_an_alert(
    monkeypatch: pytest.MonkeyPatch, escaped_thread_exceptions: list[BaseException]
) -> None:
    start = threading.Thread.start
    failures: list[str] = []

    def start_unless_first_client(self: threading.Thread) -> None:
        if self.name.startswith("socklab-client-") and not failures:
            failures.append(self.name)
            raise RuntimeError("can't start new thread")
        start(self)

    monkeypatch.setattr(threading.Thread, "start", start_unless_first_client)
    alerts: list[ServerAlert] = []
    with serve("threads", ServerConfig(port=0, alert=alerts.append)) as handle:
        with socket.create_connection(handle.address, timeout=TIMEOUT_S) as sock:
            assert read_until_closed(sock) == b"E:server busy, try again later\n"
        with StreamConverterClient(*handle.address, timeout_s=TIMEOUT_S) as client:
            assert client.request(b"U:next") == b"NEXT"
    assert failures
    assert alerts == [ThreadsExhausted(1, "can't start new thread")]
    assert escaped_thread_exceptions == []
