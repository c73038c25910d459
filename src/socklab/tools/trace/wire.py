"""Trace events on the pipe from a traced Python program to `socklab trace`: one JSON line each.

The traced program writes `encode_event(event)` to a descriptor of its own (never its stdout);
`socklab trace` reads the lines back with `decode_event`. The reader treats every line as
hostile: the program is the student's, and the bytes inside the events came from its peers. So a
line is bounded (`MAX_EVENT_BYTES`), every field is checked for its type and range, strings are
escaped for the terminal and cut, and a line that does not fit is dropped, never half-believed.

Each line is written with one `write()` and is shorter than PIPE_BUF (4096 bytes on Linux), so
lines of the program's threads never interleave: 256 bytes of data are 512 hex digits.
"""

from __future__ import annotations

import json
from typing import Any

from socklab.protocol.escaping import escape_for_terminal
from socklab.tracing.events import TRACE_DATA_BYTES, Call, TraceEvent

# A generous bound over the largest real line (~900 bytes: 512 hex digits plus the fields).
MAX_EVENT_BYTES = 4096
# Host names and error texts as long as a terminal line at most; more is not a real one.
MAX_TEXT_BYTES = 200
_CALLS = {call.value: call for call in Call}
_FD_LIMIT = 1 << 31


def encode_event(event: TraceEvent) -> bytes:
    """One line (newline included) for the pipe."""
    fields: dict[str, Any] = {
        "call": event.call.value,
        "fd": event.fd,
        "transport": event.transport,
    }
    if event.nbytes is not None:
        fields["nbytes"] = event.nbytes
    if event.data:
        fields["data"] = event.data[:TRACE_DATA_BYTES].hex()
    if event.address is not None:
        fields["address"] = [event.address[0][:MAX_TEXT_BYTES], event.address[1]]
    if event.argument is not None:
        fields["argument"] = event.argument
    if event.new_fd is not None:
        fields["new_fd"] = event.new_fd
    if event.error is not None:
        fields["error"] = event.error[:MAX_TEXT_BYTES]
    if event.timed_out:
        fields["timed_out"] = True
    if event.sequence:
        fields["sequence"] = event.sequence
    if event.ipv6:
        fields["ipv6"] = True
    if event.listening:
        fields["listening"] = True
    if not event.connected:
        fields["connected"] = False
    return json.dumps(fields, separators=(",", ":")).encode("ascii") + b"\n"


def _count(value: object, *, required: bool = False) -> int | None:
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _FD_LIMIT:
        raise ValueError(f"not a count: {value!r}")
    return value


def _text(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a text: {value!r}")
    return escape_for_terminal(value, max_bytes=MAX_TEXT_BYTES)


def _address(value: object) -> tuple[str, int] | None:
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == 2):
        raise ValueError(f"not an address: {value!r}")
    host = _text(value[0])
    port = _count(value[1], required=True)
    assert host is not None and port is not None
    if port > 65535:
        raise ValueError(f"not a port: {port}")
    return host, port


def _argument(value: object) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"not a number: {value!r}")
    return value


def _data(value: object) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str) or len(value) > 2 * TRACE_DATA_BYTES:
        raise ValueError("data is not hex of at most TRACE_DATA_BYTES bytes")
    return bytes.fromhex(value)


def decode_event(line: bytes) -> TraceEvent | None:
    """The event on one line, or None when the line is not one (too long, malformed)."""
    if len(line) > MAX_EVENT_BYTES:
        return None
    try:
        fields = json.loads(line)
        if not isinstance(fields, dict):
            return None
        call = _CALLS[fields["call"]]
        transport = fields.get("transport")
        if transport not in ("tcp", "udp"):
            return None
        fd = _count(fields.get("fd"), required=True)
        assert fd is not None
        return TraceEvent(
            call=call,
            fd=fd,
            transport=transport,
            nbytes=_count(fields.get("nbytes")),
            data=_data(fields.get("data")),
            address=_address(fields.get("address")),
            argument=_argument(fields.get("argument")),
            new_fd=_count(fields.get("new_fd")),
            error=_text(fields.get("error")),
            timed_out=fields.get("timed_out") is True,
            sequence=_count(fields.get("sequence")) or 0,
            ipv6=fields.get("ipv6") is True,
            listening=fields.get("listening") is True,
            connected=fields.get("connected") is not False,
        )
    # RecursionError: a line of 2,000 nested brackets fits in MAX_EVENT_BYTES and is deeper than
    # json's C decoder goes; uncaught, it ended the reader thread (a traceback, the pipe closed).
    except (KeyError, TypeError, ValueError, RecursionError):  # JSONDecodeError is a ValueError
        return None
