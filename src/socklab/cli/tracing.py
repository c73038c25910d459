"""`--trace` and `--explain`: trace events rendered as lines a student can read, on stderr.

Each event becomes one header line (`[trace] fd 7  recv(65536) -> 15 bytes`), then, for calls
that move bytes, a hexdump with the text beside it; the bytes of each receive call are framed
by a start and an end line, so two sends merged into one TCP recv() are plainly one block, and
UDP's one-datagram-per-recvfrom() plainly several. `--explain` adds one sentence per call in
the chosen language. Trace output goes to stderr so it never mixes with a program's own output
(scripts and tests read stdout); each event is written in one piece, so lines of concurrent
connections never interleave mid-event.
"""

from __future__ import annotations

import argparse

from socklab.cli.environment import Environment
from socklab.i18n import _, format_count
from socklab.protocol.endpoints import format_endpoint
from socklab.protocol.escaping import escape_for_terminal, hexdump_lines
from socklab.tracing import Call, TraceEvent, Tracer
from socklab.tracing.live_sink import ENVIRONMENT_VARIABLE, LiveSink, loopback_address

PREFIX = "[trace] "
INDENT = " " * len(PREFIX)
SENDING = frozenset({Call.SEND, Call.SENDALL, Call.SENDTO, Call.SENDMSG, Call.WRITE})
RECEIVING = frozenset({Call.RECV, Call.RECVFROM, Call.RECVMSG, Call.RECV_INTO, Call.READ})


def add_trace_options(parser: argparse.ArgumentParser) -> None:
    """The two options every client and server offers."""
    parser.add_argument(
        "--trace",
        action="store_true",
        help=_("show every socket call as it happens, with its bytes (on standard error)"),
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help=_("like --trace, plus one sentence per call saying what it does"),
    )


def tracer_from_args(args: argparse.Namespace, env: Environment) -> Tracer | None:
    """The tracer the options ask for, or None (the programs then run untraced, at full speed)."""
    explain = bool(getattr(args, "explain", False))
    if not (getattr(args, "trace", False) or explain):
        return None
    return make_tracer(env, explain=explain)


def make_tracer(env: Environment, *, explain: bool) -> Tracer:
    sink = live_sink_from(env)

    def trace(event: TraceEvent) -> None:
        env.warn("\n".join(render_event(event, explain=explain)))
        if sink is not None:
            sink.send(event)

    return trace


def live_sink_from(env: Environment) -> LiveSink | None:
    """Where `SOCKLAB_LIVE` asks the receive calls to go too (socklab live), if anywhere."""
    wanted = env.environ.get(ENVIRONMENT_VARIABLE)
    if not wanted:
        return None
    address = loopback_address(wanted)
    if address is None:
        env.warn(
            _(
                "{variable}={value} is not a loopback ip:port: the recv() calls are not sent to socklab live. Use the address socklab live printed, e.g. {variable}=127.0.0.1:8765."
            ).format(variable=ENVIRONMENT_VARIABLE, value=escape_for_terminal(wanted, max_bytes=80))
        )
        return None
    return LiveSink(address)


def format_address(address: tuple[str, int] | None) -> str:
    if address is None:
        return "?"
    return format_endpoint(address[0], address[1])


def count_bytes(nbytes: int) -> str:
    """A size in words, singular or plural, in the language's number format: "1 byte", "1,024 bytes"."""
    return format_count("{count} byte", "{count} bytes", nbytes)


def _argument(event: TraceEvent) -> str:
    return "" if event.argument is None else str(event.argument)


def headline(event: TraceEvent) -> str:
    """The one line naming the call, its arguments and its result."""
    name = event.call.value
    if event.error is not None:
        target = f"({format_address(event.address)})" if event.address else "()"
        return _("{call} failed: {error}").format(call=name + target, error=event.error)
    if event.timed_out:
        return _("{call} timed out: socket.timeout raised").format(
            call=f"{name}({_argument(event)})"
        )
    match event.call:
        case Call.SOCKET:
            family = "AF_INET6" if event.ipv6 else "AF_INET"
            kind = "SOCK_DGRAM" if event.transport == "udp" else "SOCK_STREAM"
            return _("socket({family}, {kind}) -> new socket fd {fd}").format(
                family=family, kind=kind, fd=event.fd
            )
        case Call.BIND | Call.CONNECT:
            return f"{name}({format_address(event.address)})"
        case Call.LISTEN | Call.SETTIMEOUT | Call.SHUTDOWN:
            return f"{name}({_argument(event)})"
        case Call.ACCEPT:
            return _("accept() -> new socket fd {fd} for {peer}").format(
                fd=event.new_fd, peer=format_address(event.address)
            )
        case Call.SEND | Call.SENDALL | Call.WRITE:
            return f"{name}() {count_bytes(event.nbytes or 0)}"
        case Call.SENDTO | Call.SENDMSG if event.address is not None:
            return _("sendto({address}) {count}").format(
                address=format_address(event.address), count=count_bytes(event.nbytes or 0)
            )
        case Call.SENDMSG:
            return f"{name}() {count_bytes(event.nbytes or 0)}"
        case Call.RECV | Call.RECVFROM | Call.RECVMSG | Call.RECV_INTO | Call.READ:
            call = f"{name}({_argument(event)})"
            if event.nbytes == 0 and event.transport == "tcp":
                return _("{call} -> 0 bytes: the peer closed its side (end of stream)").format(
                    call=call
                )
            if event.address is not None and event.transport == "udp":
                return _("{call} -> {count} from {address}").format(
                    call=call,
                    count=count_bytes(event.nbytes or 0),
                    address=format_address(event.address),
                )
            return f"{call} -> {count_bytes(event.nbytes or 0)}"
        case Call.CLOSE:
            return "close()"
    return f"{name}()"


def explanation(event: TraceEvent) -> str:
    """One sentence saying what the call does, for --explain."""
    udp = event.transport == "udp"
    if event.error is not None:
        return _("The operating system refused this call; the error line says why and what to do.")
    if event.timed_out:
        return _(
            "The call waited as long as settimeout() allows and raised socket.timeout; a program can catch it and try again."
        )
    match event.call:
        case Call.SOCKET:
            if udp:
                return _(
                    "socket() asks the operating system for a new UDP endpoint; nothing is sent yet."
                )
            return _(
                "socket() asks the operating system for a new TCP endpoint; nothing is sent yet."
            )
        case Call.BIND:
            return _(
                "bind() claims this address and port: the operating system now delivers their traffic to this socket."
            )
        case Call.LISTEN:
            return _(
                "listen() makes this a welcoming socket: the operating system completes handshakes and queues new connections."
            )
        case Call.ACCEPT:
            return _(
                "accept() takes the next connection from the queue and returns a NEW socket just for this client; the listening socket keeps waiting."
            )
        case Call.CONNECT:
            if udp:
                return _(
                    "connect() on UDP sends nothing: it only sets the default destination and accepts replies from it alone."
                )
            return _(
                "connect() runs TCP's three-way handshake with the server; when it returns, both sides can send."
            )
        case Call.WRITE:
            return _(
                "write() on a socket is send() without flags: the bytes go to the kernel, and TCP may deliver them merged or split."
            )
        case Call.READ:
            return _(
                "read() on a socket is recv() without flags: it returns whatever bytes have arrived, up to the size asked for."
            )
        case Call.SEND | Call.SENDALL | Call.SENDMSG:
            if udp and event.call is Call.SENDALL:
                return _(
                    "sendall() on a connected UDP socket sends exactly one datagram: it arrives whole or not at all."
                )
            if udp:
                return _(
                    "send() on a connected UDP socket sends exactly one datagram: it arrives whole or not at all."
                )
            if event.call is Call.SENDALL:
                return _(
                    "sendall() calls send() again and again until every byte is handed to the kernel; TCP cuts the stream into segments as it likes, so the receiver may get them merged or split."
                )
            return _(
                "send() hands bytes to the kernel and returns how many it took, which may be fewer than given (the program must send the rest); TCP cuts the stream into segments as it likes, so the receiver may get them merged or split."
            )
        case Call.SENDTO:
            return _(
                "sendto() sends exactly one datagram to this address: it arrives whole or not at all."
            )
        case Call.RECV | Call.RECVFROM | Call.RECVMSG | Call.RECV_INTO:
            if udp:
                return _(
                    "On UDP each receive call returns exactly one datagram, with its sender: the boundaries of every send are kept."
                )
            if event.nbytes == 0:
                return _(
                    "recv() returning 0 bytes means the peer closed its side: no more data will come."
                )
            return _(
                "recv() returns whatever bytes have arrived, up to the size asked for: parts of several sends, or part of one."
            )
        case Call.SETTIMEOUT:
            if event.argument is None:
                return _("settimeout(None) lets the socket's calls block until they complete.")
            return _(
                "settimeout() limits how long blocking calls such as recv() and accept() wait before raising socket.timeout."
            )
        case Call.SHUTDOWN:
            return _(
                "shutdown() ends one direction of the connection: the peer's recv() sees the end of the stream."
            )
        case Call.CLOSE:
            if udp:
                return _(
                    "close() releases the socket and its port; UDP tells the other side nothing."
                )
            if event.listening:
                return _(
                    "close() on a listening socket stops accepting: it has no peer, so no FIN is sent; connections still waiting in the listen backlog are reset."
                )
            if not event.connected:
                return _("close() releases the socket; it has no connection, so nothing is sent.")
            return _(
                "close() releases the socket; TCP sends FIN, so the peer's recv() returns 0 bytes once it read everything."
            )
    return ""


def printable_text(data: bytes) -> str:
    """The bytes as quoted text, every byte visible (the project's one escaper)."""
    return escape_for_terminal(data, quoted=True)


def render_event(event: TraceEvent, *, explain: bool) -> list[str]:
    """The lines for one event: headline, bytes (framed for receive calls), explanation."""
    lines = [f"{PREFIX}fd {event.fd}  {headline(event)}"]
    moved = event.error is None and not event.timed_out and event.nbytes
    if moved and (event.call in SENDING or event.call in RECEIVING):
        body = [printable_text(event.data), *hexdump_lines(event.data)]
        assert event.nbytes is not None
        if event.nbytes > len(event.data):
            body.append(
                _("... {count} more not shown").format(
                    count=count_bytes(event.nbytes - len(event.data))
                )
            )
        if event.call in RECEIVING:
            label = f"{event.call.value} #{event.sequence}"
            lines.append(INDENT + "┌── " + _("start of {call}").format(call=label))
            lines.extend(INDENT + "│ " + line for line in body)
            lines.append(
                INDENT
                + "└── "
                + _("end of {call}: {count} in this one call").format(
                    call=label, count=count_bytes(event.nbytes)
                )
            )
        else:
            lines.extend(INDENT + "  " + line for line in body)
    if explain:
        sentence = explanation(event)
        if sentence:
            lines.append(INDENT + "= " + sentence)
    return lines


__all__ = ["add_trace_options", "make_tracer", "render_event", "tracer_from_args"]
