"""Errors become one translated line with a next step, and an exit status — in one place."""

from __future__ import annotations

from socklab import errors
from socklab.cli.status import ExitStatus
from socklab.i18n import Deferred, _, format_number, ngettext
from socklab.protocol.endpoints import format_endpoint


def _where(error: errors.NetworkError) -> str:
    if error.host is not None and error.port is not None:
        return format_endpoint(error.host, error.port)
    if error.host is not None:
        return error.host
    return _("the peer")


def format_error_line(program: str, line: str) -> str:
    """The one style of every error line: `socklab <command>: <what happened>. <next step>`.

    `program` is what the user typed to get here ("socklab", "socklab hello client"), as a
    compiler or `grep` names itself, so a line in a script's log says which command failed.
    """
    return _("{program}: {message}").format(program=program, message=line)


def describe_error(
    error: errors.SocklabError, port_option: str = "--port"
) -> tuple[str, ExitStatus]:
    """The line a beginner reads for `error`, and the status the command exits with.

    `port_option` is the flag that chooses the command's own port (`impair` has `--listen`).
    """
    # A detail worded in the core (a framing error) is English until it reaches the terminal.
    detail = error.args[0].translated() if _is_deferred(error.args) else str(error)
    if isinstance(error, errors.UsageError):
        return detail, ExitStatus.USAGE
    if isinstance(error, errors.AddressInUseError):
        return _describe_address_in_use(error, port_option), ExitStatus.ADDRESS_IN_USE
    if isinstance(error, errors.AddressNotAvailableError):
        return (
            _(
                "{host} is not an address of this computer. Listen on 127.0.0.1 (this computer only), 0.0.0.0 (all interfaces) or one of its own addresses."
            ).format(host=error.host),
            ExitStatus.NETWORK,
        )
    if isinstance(error, errors.RefusedError):
        return (
            _(
                "Connection to {where} refused: nothing is listening there. Is the server running, and on this port?"
            ).format(where=_where(error)),
            ExitStatus.NETWORK,
        )
    if isinstance(error, errors.PermissionDeniedError):
        if error.port is not None and error.port < 1024:
            line = _(
                "Permission denied for port {port}: ports below 1024 need administrator rights. Use a port from 1024 up."
            ).format(port=error.port)
        else:
            line = _(
                "Permission denied ({detail}). Run with the needed rights, or choose another port."
            ).format(detail=detail)
        return line, ExitStatus.PERMISSION
    if isinstance(error, errors.HostNotFoundError):
        return (
            _(
                "Host '{host}' not found. Check the name, or use an IP address such as 127.0.0.1."
            ).format(host=error.host),
            ExitStatus.NETWORK,
        )
    if isinstance(error, errors.ReplyTimeoutError):
        timeout_line = describe_reply_timeout(error)
        if timeout_line is not None:
            return timeout_line, ExitStatus.NETWORK
    if isinstance(error, errors.NetworkTimeoutError):
        return (
            _(
                "No answer from {where} in time. Is the server running and reachable? Try a longer --timeout."
            ).format(where=_where(error)),
            ExitStatus.NETWORK,
        )
    if isinstance(error, errors.UnreachableError):
        return (
            _(
                "{where} is unreachable: no route to it. Check the address and your network connection."
            ).format(where=_where(error)),
            ExitStatus.NETWORK,
        )
    if isinstance(error, errors.BrokenResourceError):
        return (
            _(
                "The connection to {where} was reset: the other side closed it abruptly. Check its output."
            ).format(where=_where(error)),
            ExitStatus.NETWORK,
        )
    if isinstance(error, errors.NetworkError):
        return _("Network error at {where}: {detail}").format(
            where=_where(error), detail=detail
        ), ExitStatus.NETWORK
    if isinstance(error, errors.RemoteProtocolError):
        return _("The peer broke the protocol: {detail}").format(detail=detail), ExitStatus.PROTOCOL
    return detail, ExitStatus.ERROR


def _is_deferred(args: tuple[object, ...]) -> bool:
    return len(args) == 1 and isinstance(args[0], Deferred)


def describe_reply_timeout(error: errors.ReplyTimeoutError) -> str | None:
    """The line for a connection on which no whole message came in time, naming what did:
    bytes the framing could not end (a framing mismatch), or not a byte before the greeting
    (a server busy with another client); None where the plain timeout line says it all."""
    values = {
        "where": _where(error),
        "timeout": format_number(error.timeout_s, None),
        "bytes": format_number(error.partial_bytes),
    }
    if error.partial_bytes and error.framing == "line":
        return ngettext(
            "No whole reply from {where} within {timeout} s: {bytes} byte without a newline: is the server using --framing raw? Then use --framing raw here too.",
            "No whole reply from {where} within {timeout} s: {bytes} bytes without a newline: is the server using --framing raw? Then use --framing raw here too.",
            error.partial_bytes,
        ).format(**values)
    if error.partial_bytes and error.framing == "length":
        return ngettext(
            "No whole reply from {where} within {timeout} s: {bytes} byte of a length-prefixed message, still incomplete: is the server using --framing line or raw?",
            "No whole reply from {where} within {timeout} s: {bytes} bytes of a length-prefixed message, still incomplete: is the server using --framing line or raw?",
            error.partial_bytes,
        ).format(**values)
    if error.awaiting_greeting:
        return _(
            "No answer from {where} within {timeout} s: connected, but no greeting yet: the server may be serving another client (iterative model, listen backlog). Try again when it is free, or give a longer --timeout."
        ).format(**values)
    return None


def _describe_address_in_use(error: errors.AddressInUseError, port_option: str) -> str:
    port = error.port
    # Only a server's bind names its transport; the socket table is read for it alone, and
    # imported here, so that a server does not keep that tool in memory for its whole life.
    from socklab.tools.ports import find_port_blockers

    blockers = (
        find_port_blockers(port, error.transport)
        if port is not None and error.transport is not None
        else None
    )
    if blockers is not None and blockers.holder is not None:
        return _(
            "Port {port} is already in use by {holder}. Stop that program or choose another port with {option}."
        ).format(port=port, holder=blockers.holder, option=port_option)
    if blockers is not None and not blockers.held and blockers.time_wait:
        # Linux refuses the bind while a TIME_WAIT socket of the port lacks SO_REUSEADDR, even
        # to a socket that sets it (socklab's servers do): the program that closed first did not.
        return ngettext(
            "Port {port} is held by no program, only by {count} closed connection in TIME_WAIT: the side that closes a TCP connection first keeps it for 2 × MSL (60 s on Linux), and the program that closed it had not set SO_REUSEADDR. Wait a minute, or choose another port with {option}.",
            "Port {port} is held by no program, only by {count} closed connections in TIME_WAIT: the side that closes a TCP connection first keeps it for 2 × MSL (60 s on Linux), and the program that closed them had not set SO_REUSEADDR. Wait a minute, or choose another port with {option}.",
            blockers.time_wait,
        ).format(port=port, count=blockers.time_wait, option=port_option)
    return _(
        "Port {port} is already in use by another program. Find it with 'socklab ports --port {port}', or choose another port with {option}."
    ).format(port=port, option=port_option)
