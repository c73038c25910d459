"""Answering a datagram without ever starting a reflection loop: one decision for every UDP server.

UDP has no handshake, so the source address of a datagram is whatever its sender wrote. One
spoofed datagram, "from" server B to server A, makes A answer B; if B answers that reply with a
datagram A answers again, the two servers bounce it between them until a packet is lost, and
a few such datagrams saturate both. This is the old echo/chargen loop (RFC 862 and RFC 864
services pointed at each other, CERT advisory CA-1996-01) and was found in socklab's own
servers: the converter answered `E:reply longer than request` with itself, `upper` answered
`HELLO` with `HELLO` and an empty datagram with an empty one. A byte ratio of 1.0 (no reply
longer than its request) stops amplification, not loops.

So a UDP server stays silent for:

* an empty datagram: it carries no request, and an empty reply is the classic echo loop;
* a source port below 1024: echo (7), discard, daytime (13), chargen (19), DNS (53), NTP (123)
  answer from there and no client program sends from there (inetd's `check_loop` refuses the
  same ports for its internal UDP services; RFC 6335 calls them System Ports);
* a reply equal to its request: an idempotent service (upper-casing) would otherwise be its
  own fixed point, answering its own reply forever;
* an `E:` datagram: socklab's error replies start so, and no error is answered (RFC 1122
  section 3.2.2: no ICMP error message about an ICMP error message). The converter's handler
  refuses it too; here it also keeps `upper` from answering the converter's errors, which it
  would upper-case into one more hop of a chain.

Pure: the runtime passes the source port it got from `recvfrom()`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Final

from socklab.protocol.converter import (
    ERROR_PREFIX,
    REQUEST_ID_MARK,
    handle_datagram,
    split_request_id,
)

# RFC 6335 section 6: ports 0-1023 are System Ports, where the standard services live.
LOWEST_ANSWERED_PORT: Final = 1024

DatagramHandler = Callable[[bytes], bytes | None]


class Silence(enum.Enum):
    """Why a datagram got no reply."""

    EMPTY = "empty datagram"
    SYSTEM_PORT = "source port below 1024"
    ERROR = "an error reply is never answered"
    NO_REPLY = "the protocol has no reply for it"
    ECHO = "the reply would equal the request"


# Module globals: this runs once per datagram of every UDP server, and reading an Enum member
# through its class costs a metaclass lookup.
_EMPTY = Silence.EMPTY
_SYSTEM_PORT = Silence.SYSTEM_PORT
_ERROR = Silence.ERROR
_NO_REPLY = Silence.NO_REPLY
_ECHO = Silence.ECHO


def answer_datagram(
    datagram: bytes, source_port: int, handle: DatagramHandler = handle_datagram
) -> bytes | Silence:
    """The reply to `datagram` from `source_port` as `handle` makes it, or why there is none."""
    if not datagram:
        return _EMPTY
    if source_port < LOWEST_ANSWERED_PORT:
        return _SYSTEM_PORT
    if (
        datagram[:2] == ERROR_PREFIX
        or (
            datagram[:1] == REQUEST_ID_MARK  # `#<id> E:...` is an error reply too
            and split_request_id(datagram)[1][:2] == ERROR_PREFIX
        )
    ):
        return _ERROR
    reply = handle(datagram)
    if reply is None:
        return _NO_REPLY
    if reply == datagram:
        return _ECHO
    return reply
