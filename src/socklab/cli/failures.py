"""Errors become one translated line with a next step, and an exit status — in one place."""

from __future__ import annotations

from socklab import errors
from socklab.cli.status import ExitStatus
from socklab.i18n import _, ngettext
from socklab.protocol.endpoints import format_endpoint


def _where(error: errors.NetworkError) -> str:
    if error.host is not None and error.port is not None:
        return format_endpoint(error.host, error.port)
    if error.host is not None:
        return error.host
    return _("the peer")


def describe_error(error: errors.SocklabError) -> tuple[str, ExitStatus]:
    """The line a beginner reads for `error`, and the status the command exits with."""
    detail = str(error)
    if isinstance(error, errors.UsageError):
        return _("Error: {detail}").format(detail=detail), ExitStatus.USAGE
    if isinstance(error, errors.AddressInUseError):
        port = error.port
        # Only a server's bind names its transport; the socket table is read for it alone, and
        # imported here, so that a server does not keep that tool in memory for its whole life.
        from socklab.tools.ports import describe_port_holder

        holder = (
            describe_port_holder(port, error.transport)
            if port is not None and error.transport is not None
            else None
        )
        if holder:
            line = _(
                "Port {port} is already in use by {holder}. Stop that program or choose another port with --port."
            ).format(port=port, holder=holder)
        else:
            line = _(
                "Port {port} is already in use by another program. Find it with 'socklab ports --port {port}', or choose another port with --port."
            ).format(port=port)
        return line, ExitStatus.ADDRESS_IN_USE
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
    return _("Error: {detail}").format(detail=detail), ExitStatus.ERROR


def describe_reply_timeout(error: errors.ReplyTimeoutError) -> str | None:
    """The line for a connection on which no whole message came in time, naming what did:
    bytes the framing could not end (a framing mismatch), or not a byte before the greeting
    (a server busy with another client); None where the plain timeout line says it all."""
    values = {
        "where": _where(error),
        "timeout": f"{error.timeout_s:g}",
        "bytes": error.partial_bytes,
    }
    if error.partial_bytes and error.framing == "line":
        return ngettext(
            "No whole reply from {where} within {timeout} s: {bytes:,} byte without a newline: is the server using --framing raw? Then use --framing raw here too.",
            "No whole reply from {where} within {timeout} s: {bytes:,} bytes without a newline: is the server using --framing raw? Then use --framing raw here too.",
            error.partial_bytes,
        ).format(**values)
    if error.partial_bytes and error.framing == "length":
        return ngettext(
            "No whole reply from {where} within {timeout} s: {bytes:,} byte of a length-prefixed message, still incomplete: is the server using --framing line or raw?",
            "No whole reply from {where} within {timeout} s: {bytes:,} bytes of a length-prefixed message, still incomplete: is the server using --framing line or raw?",
            error.partial_bytes,
        ).format(**values)
    if error.awaiting_greeting:
        return _(
            "No answer from {where} within {timeout} s: connected, but no greeting yet: the server may be serving another client (iterative model, listen backlog). Try again when it is free, or give a longer --timeout."
        ).format(**values)
    return None
