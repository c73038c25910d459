"""No reply that could start a reflection loop, for every UDP protocol (pure decisions)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from socklab.protocol.converter import UDP_REPLY_TOO_LONG, handle_datagram
from socklab.protocol.reflection import Silence, answer_datagram
from socklab.protocol.upper import handle_upper_datagram

CLIENT_PORT = 40000


def test_converter_never_answers_an_error_datagram() -> None:
    # It used to answer this one with itself: two converters bounced it forever.
    assert handle_datagram(UDP_REPLY_TOO_LONG) is None
    assert handle_datagram(b"#7 E:unknown command 'X'") is None
    assert answer_datagram(UDP_REPLY_TOO_LONG, CLIENT_PORT) is Silence.ERROR
    # Nor does upper: it would upper-case the converter's errors into one more hop.
    assert answer_datagram(b"E:unknown", CLIENT_PORT, handle_upper_datagram) is Silence.ERROR


def test_empty_datagrams_and_system_ports_get_no_reply() -> None:
    assert answer_datagram(b"", CLIENT_PORT) is Silence.EMPTY
    assert answer_datagram(b"", CLIENT_PORT, handle_upper_datagram) is Silence.EMPTY
    for port in (7, 19, 53, 123, 1023):  # echo, chargen, DNS, NTP, the last System Port
        assert answer_datagram(b"U:abc", port) is Silence.SYSTEM_PORT
    assert answer_datagram(b"U:abc", 1024) == b"ABC"


def test_a_reply_equal_to_its_request_is_not_sent() -> None:
    assert answer_datagram(b"hello", CLIENT_PORT, handle_upper_datagram) == b"HELLO"
    assert answer_datagram(b"HELLO", CLIENT_PORT, handle_upper_datagram) is Silence.ECHO


HANDLERS = {"converter": handle_datagram, "upper": handle_upper_datagram}
# A reply fed back to the server that sent it, to the other one, or to both in turn.
FEEDBACK = (["converter"], ["upper"], ["converter", "upper"], ["upper", "converter"])


def hops_after_reply(request: bytes, first: str, feedback: list[str]) -> int:
    """How often `first`'s reply to `request` is answered again, the servers of `feedback`
    taking turns, before one stays silent (10: no end in sight)."""
    datagram = answer_datagram(request, CLIENT_PORT, HANDLERS[first])
    hops = 0
    while isinstance(datagram, bytes) and hops < 10:
        server = feedback[hops % len(feedback)]
        datagram = answer_datagram(datagram, CLIENT_PORT, HANDLERS[server])
        if isinstance(datagram, bytes):
            hops += 1
    return hops


def assert_every_chain_ends_within_3_hops(request: bytes) -> None:
    for first in HANDLERS:
        for feedback in FEEDBACK:
            assert hops_after_reply(request, first, feedback) <= 3, (request, first, feedback)


# Seeds made of the pieces that make replies look like requests: nested commands in both cases,
# request ids, error prefixes, letters and bytes that change length when case-mapped.
_PIECES = st.sampled_from(
    [
        b"U:",
        b"L:",
        b"u:",
        b"l:",
        b"C:",
        b"E:",
        b"#1 ",
        b"#",
        b" ",
        b"a",
        b"B",
        "ß".encode(),
        "ΐ".encode(),
        "ŉ".encode(),
        b"\xff",
        b"",
    ]
)
SEEDS = (
    st.binary(max_size=80)
    | st.text(max_size=40).map(str.encode)
    | st.lists(_PIECES, max_size=30).map(b"".join)
)


def test_the_replies_that_looped_end_at_once() -> None:
    # Each was answered by itself, by the other server, or one hop per nested command.
    for request in (
        UDP_REPLY_TOO_LONG + b"!",
        b"hello",
        b"HELLO",
        b"",
        b"U:U:U:U:U:U:abc",
        b"L:L:L:L:L:L:abc",
        b"l:l:l:l:l:l:abc",
    ):
        assert_every_chain_ends_within_3_hops(request)


@given(SEEDS)
def test_every_chain_between_the_servers_ends_within_3_hops(request: bytes) -> None:
    assert_every_chain_ends_within_3_hops(request)
