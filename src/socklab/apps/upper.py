"""The uppercase services of the lecture slides (port 12000), over UDP and TCP.

They follow the slides' programs (the UDP server answers datagrams forever; the TCP server
receives one sentence per connection, answers, closes, forever) and add what a service on a
network needs:

* loopback by default (`--host 0.0.0.0` opens it, with a note), like the converter;
* TCP is served by the converter's concurrency models (`UpperSession` under any runtime), so a
  client that connects and says nothing holds its own connection only, not the next client;
* over UDP a datagram cut short by the buffer is reported, not answered as if whole; replies are
  never larger than the request; and no reply is sent where it could start a reflection loop
  (`socklab.protocol.reflection`: `HELLO` answered with `HELLO` bounced forever);
* every byte from a peer is escaped before it reaches the terminal, long ones shortened, and a
  flood of datagrams or connections prints a few lines a second plus one summary line;
* Ctrl+C stops the server on every OS.
"""

from __future__ import annotations

import socket
import threading

from socklab.apps.peer_lines import (
    PeerLineLimiter,
    Report,
    summarize_connections,
    summarize_datagrams,
)
from socklab.i18n import _, format_number
from socklab.protocol.closing import TIMEOUTS, CloseReason
from socklab.protocol.endpoints import format_endpoint
from socklab.protocol.escaping import escape_for_terminal
from socklab.protocol.reflection import Silence, answer_datagram
from socklab.protocol.upper import SENTENCE_BYTES, UpperSession, handle_upper_datagram
from socklab.runtimes import DEFAULT_RUNTIME, serve
from socklab.runtimes.config import (
    ConnectionClosed,
    ConnectionRefusedBusy,
    ServerConfig,
    ServerEvent,
)
from socklab.runtimes.handle import ServerHandle
from socklab.runtimes.listening import bound_address, open_datagram_socket
from socklab.runtimes.oserrors import translated_oserrors
from socklab.tracing import Tracer, connect_stream, new_socket, poll_quietly

DEFAULT_HOST = "127.0.0.1"  # the converter's rule: loopback unless told otherwise
UDP_RECEIVE_BYTES = 2048  # the slides' recvfrom(2048)
POLL_S = 0.5  # blocking calls wait in slices, so a stop request (or Ctrl+C on Windows) is seen
# A TCP client gets this long to send its sentence (the slides' server waits forever). Only its
# own connection waits: the others are served meanwhile.
CLIENT_TIMEOUT_S = 10.0
# Bytes of a request or reply shown in a log line; longer ones are cut and their size named.
SHOWN_BYTES = 100


def _show(data: bytes) -> str:
    return escape_for_terminal(data, max_bytes=SHOWN_BYTES, quoted=True)


class UpperServer:
    """Either transport; `serve_forever()` until `stop()` (thread-safe) or Ctrl+C.

    TCP runs on a runtime of the RUNTIMES registry (`model`), UDP on the slides' own loop.
    """

    def __init__(
        self,
        transport: str,
        host: str,
        port: int,
        report: Report,
        tracer: Tracer | None = None,
        model: str = DEFAULT_RUNTIME,
    ) -> None:
        self.transport = transport
        self.report = report
        self._stop = threading.Event()
        self._handle: ServerHandle | None = None
        # Why the runtime failed, for the caller to raise in its own thread (the CLI turns it
        # into one line); a thread's exception would be a traceback.
        self.failure: Exception | None = None
        if transport == "udp":
            self._limiter = PeerLineLimiter(report, summarize_datagrams)
            config = ServerConfig(host=host, port=port, transport="udp", tracer=tracer)
            self.sock = open_datagram_socket(config)
            poll_quietly(self.sock, POLL_S)
            self.address = bound_address(self.sock)
            return
        self._limiter = PeerLineLimiter(report, summarize_connections)
        config = ServerConfig(
            host=host,
            port=port,
            transport="tcp",
            framing="raw",  # the slides' bytes, no delimiter: the busy and timeout notices too
            max_message_bytes=SENTENCE_BYTES,
            idle_timeout_s=CLIENT_TIMEOUT_S,
            message_timeout_s=CLIENT_TIMEOUT_S,
            session_factory=UpperSession,
            observer=self._observe,
            tracer=tracer,
        )
        self._handle = serve(model, config)
        self.address = self._handle.address

    def stop(self) -> None:
        self._stop.set()

    def serve_forever(self) -> None:
        self.report(_("The server is ready to receive"))
        if self._handle is not None:
            self._serve_connections(self._handle)
        else:
            self._serve_datagrams()

    # -- TCP: a runtime serves, this thread reports ------------------------------------------
    def _serve_connections(self, handle: ServerHandle) -> None:
        try:
            while not self._stop.wait(POLL_S):
                self._limiter.tick()
                if handle.wait(0):  # raises why the runtime stopped on its own
                    break
        except Exception as exc:
            self.failure = exc
        finally:
            try:
                handle.stop()  # within the shutdown grace plus a margin (5 s)
            except Exception as exc:
                self.failure = self.failure or exc
            self._limiter.flush()

    def _observe(self, event: ServerEvent) -> None:
        match event:
            case ConnectionClosed(peer, reason, session):
                self._limiter.offer(peer, lambda: _describe_connection(peer, reason, session))
            case ConnectionRefusedBusy(peer):
                self._limiter.offer(
                    peer,
                    lambda: _("Refused {peer}: server busy").format(peer=format_endpoint(*peer)),
                )
            case _:
                pass  # opened: the line comes when it closes, with what it sent

    # -- UDP: the slides' loop -----------------------------------------------------------------
    def _serve_datagrams(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._serve_datagram()
                except OSError as exc:  # one client's failure must not end the service
                    self.report(_("Socket error, still serving: {error}").format(error=exc))
                self._limiter.tick()
        finally:
            self.sock.close()
            self._limiter.flush()

    def _serve_datagram(self) -> None:
        try:
            message, truncated, client_address = _receive_datagram(self.sock, UDP_RECEIVE_BYTES)
        except TimeoutError:
            return
        except ConnectionResetError:
            return  # Windows reports an earlier reply's ICMP "port unreachable" here
        if truncated:
            self._limiter.offer(
                client_address,
                lambda: _(
                    "Datagram from {peer} was larger than {size} bytes and was cut off: not answered."
                ).format(peer=format_endpoint(*client_address), size=UDP_RECEIVE_BYTES),
            )
            return
        reply = answer_datagram(message, client_address[1], handle_upper_datagram)
        if isinstance(reply, bytes):
            self.sock.sendto(reply, client_address)
        self._limiter.offer(
            client_address, lambda: _describe_datagram(client_address, message, reply)
        )


def _describe_connection(peer: tuple[str, int], reason: CloseReason, session: object) -> str:
    shown_peer = format_endpoint(*peer)
    if isinstance(session, UpperSession) and session.request is not None:
        assert session.reply is not None
        return _("From {peer}: {request} -> {reply}").format(
            peer=shown_peer, request=_show(session.request), reply=_show(session.reply)
        )
    if reason in TIMEOUTS:
        return _("Client {peer} sent nothing for {seconds} s: closed.").format(
            peer=shown_peer, seconds=format_number(CLIENT_TIMEOUT_S, decimals=None)
        )
    if reason is CloseReason.RESET:
        return _("Connection with {peer} failed before it sent a sentence.").format(peer=shown_peer)
    return _("Connection from {peer} ended without a sentence.").format(peer=shown_peer)


def _describe_datagram(peer: tuple[str, int], message: bytes, reply: bytes | Silence) -> str:
    shown_peer = format_endpoint(*peer)
    if isinstance(reply, bytes):
        return _("From {peer}: {request} -> {reply}").format(
            peer=shown_peer, request=_show(message), reply=_show(reply)
        )
    why = {
        Silence.EMPTY: _("an empty datagram"),
        Silence.SYSTEM_PORT: _("its source port is below 1024, where standard services answer"),
        Silence.ECHO: _("it is upper case already, and the same datagram back could loop"),
        Silence.ERROR: _("it is an error reply, and no error is answered"),
        Silence.NO_REPLY: _("it has no reply"),
    }[reply]
    return _("From {peer}: {request} not answered: {why}.").format(
        peer=shown_peer, request=_show(message), why=why
    )


def _receive_datagram(sock: socket.socket, size: int) -> tuple[bytes, bool, tuple[str, int]]:
    """(data, truncated?, sender). recvmsg reports MSG_TRUNC; Windows raises WSAEMSGSIZE instead."""
    if hasattr(sock, "recvmsg"):
        data, _ancillary, flags, address = sock.recvmsg(size)
        return (
            data,
            bool(flags & getattr(socket, "MSG_TRUNC", 0)),
            (str(address[0]), int(address[1])),
        )
    try:
        data, address = sock.recvfrom(size)
    except OSError as exc:
        if getattr(exc, "winerror", None) == 10040:  # WSAEMSGSIZE: the datagram did not fit
            return b"", True, ("?", 0)
        raise
    return data, False, (str(address[0]), int(address[1]))


def run_upper_client(
    transport: str,
    host: str,
    port: int,
    sentence: str,
    timeout_s: float,
    tracer: Tracer | None = None,
) -> str:
    """Send one sentence as the slides' client does and return the server's reply as text."""
    data = sentence.encode("utf-8")
    with translated_oserrors(host=host, port=port):
        if transport == "udp":
            infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_DGRAM)
            family, _type, _proto, _name, address = infos[0]
            with new_socket(family, socket.SOCK_DGRAM, tracer) as client_socket:
                client_socket.settimeout(timeout_s)
                # connect() only records the server's address (no packet is sent), so an ICMP
                # "port unreachable" comes back as "refused" instead of a silent timeout.
                client_socket.connect(address)
                client_socket.send(data)
                modified_message = client_socket.recv(UDP_RECEIVE_BYTES)
            return modified_message.decode("utf-8", errors="replace")
        with connect_stream(host, port, timeout_s=timeout_s, tracer=tracer) as client_socket:
            client_socket.sendall(data)
            # The server closes after its one reply: read to the end, so long replies stay whole.
            chunks = []
            while chunk := client_socket.recv(4096):
                chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", errors="replace")
