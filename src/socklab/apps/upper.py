"""The uppercase services of the lecture slides (port 12000), over UDP and TCP.

They follow the slides' programs step by step (the UDP server answers every datagram forever;
the TCP server accepts, receives once, answers, closes, forever) and add what a real service
needs: a datagram cut short by the buffer is reported, not answered as if whole; a TCP client
that never sends cannot block the server forever; replies over UDP are never larger than the
request; Ctrl+C stops the server on every OS.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

from socklab.errors import translate_oserror
from socklab.i18n import _
from socklab.protocol.upper import upper_case
from socklab.runtimes.config import ServerConfig
from socklab.runtimes.listening import bound_address, open_datagram_socket, open_listening_socket
from socklab.tracing import Tracer, connect_stream, new_socket, poll_quietly

Report = Callable[[str], None]

UDP_RECEIVE_BYTES = 2048  # the slides' recvfrom(2048)
TCP_RECEIVE_BYTES = 1024  # the slides' recv(1024)
POLL_S = 0.5  # blocking calls wait in slices, so a stop request (or Ctrl+C on Windows) is seen
CLIENT_TIMEOUT_S = 10.0  # the iterative TCP server gives one silent client this long


def _format_peer(address: tuple[str, int]) -> str:
    host = f"[{address[0]}]" if ":" in address[0] else address[0]
    return f"{host}:{address[1]}"


def _show(data: bytes) -> str:
    return data.decode("utf-8", errors="replace").rstrip("\r\n")


class UpperServer:
    """Either transport; `serve_forever()` until `stop()` (thread-safe) or Ctrl+C."""

    def __init__(
        self, transport: str, host: str, port: int, report: Report, tracer: Tracer | None = None
    ) -> None:
        self.transport = transport
        self.report = report
        config = ServerConfig(host=host, port=port, transport=transport, backlog=1, tracer=tracer)
        if transport == "udp":
            self.sock = open_datagram_socket(config)
        else:
            self.sock = open_listening_socket(config)
        poll_quietly(self.sock, POLL_S)
        self.address = bound_address(self.sock)
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def serve_forever(self) -> None:
        try:
            self.report(_("The server is ready to receive"))
            serve_one = self._serve_datagram if self.transport == "udp" else self._serve_connection
            while not self._stop.is_set():
                try:
                    serve_one()
                except OSError as exc:  # one client's failure must not end the service
                    self.report(_("Socket error, still serving: {error}").format(error=exc))
        finally:
            self.sock.close()

    def _serve_datagram(self) -> None:
        try:
            message, truncated, client_address = _receive_datagram(self.sock, UDP_RECEIVE_BYTES)
        except TimeoutError:
            return
        except ConnectionResetError:
            return  # Windows reports an earlier reply's ICMP "port unreachable" here
        peer = _format_peer(client_address)
        if truncated:
            self.report(
                _(
                    "Datagram from {peer} was larger than {size} bytes and was cut off: not answered."
                ).format(peer=peer, size=UDP_RECEIVE_BYTES)
            )
            return
        modified_message = upper_case(message, max_reply_bytes=len(message))
        self.sock.sendto(modified_message, client_address)
        self.report(
            _("From {peer}: '{request}' -> '{reply}'").format(
                peer=peer, request=_show(message), reply=_show(modified_message)
            )
        )

    def _serve_connection(self) -> None:
        try:
            connection_socket, addr = self.sock.accept()
        except TimeoutError:
            return
        peer = _format_peer((str(addr[0]), int(addr[1])))
        with connection_socket:
            connection_socket.settimeout(CLIENT_TIMEOUT_S)
            try:
                sentence = connection_socket.recv(TCP_RECEIVE_BYTES)
                capitalized_sentence = upper_case(sentence)
                connection_socket.sendall(capitalized_sentence)
            except TimeoutError:
                self.report(
                    _("Client {peer} sent nothing for {seconds:g} s: closed.").format(
                        peer=peer, seconds=CLIENT_TIMEOUT_S
                    )
                )
                return
            except OSError as exc:
                self.report(
                    _("Connection with {peer} failed: {error}").format(peer=peer, error=exc)
                )
                return
        self.report(
            _("From {peer}: '{request}' -> '{reply}'").format(
                peer=peer, request=_show(sentence), reply=_show(capitalized_sentence)
            )
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
    try:
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
    except OSError as exc:
        raise translate_oserror(exc, host=host, port=port) from exc
