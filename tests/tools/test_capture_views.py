"""The capture's line and follow views, fed crafted packets in-process (no capture rights needed).

The end-to-end tests (test_capture_command.py, as root) check the same views on real traffic
against tshark; these pin the cases real loopback traffic does not produce on demand: a UTF-8
character cut between two segments, hostile bytes in a stream, --absolute.
"""

from __future__ import annotations

import io

from socklab.cli.capture import _FollowView, _LineView, _Printer
from socklab.cli.environment import Environment
from socklab.tools.capture.packets import TcpFlags
from tests.tools.test_capture_streams import CLIENT, SERVER, segment

SYN, ACK, PSH, FIN = TcpFlags.SYN, TcpFlags.ACK, TcpFlags.PSH, TcpFlags.FIN
CONVERSATION = [
    segment(CLIENT, SERVER, SYN, 3_000_000_000),
    segment(SERVER, CLIENT, SYN | ACK, 17, 3_000_000_001),
    segment(CLIENT, SERVER, ACK, 3_000_000_001, 18),
    segment(CLIENT, SERVER, PSH | ACK, 3_000_000_001, 18, "U:straße\n".encode()),
    segment(SERVER, CLIENT, PSH | ACK, 18, 3_000_000_011, b"STRASSE\n"),
]


def render(view_class: type[_LineView] | type[_FollowView], packets: list, **options: bool) -> str:  # type: ignore[type-arg]
    out = io.StringIO()
    printer = _Printer(
        Environment(io.StringIO(), out, io.StringIO(), {}, False, False), hex_dump=False
    )
    view = view_class(printer, **options)
    for packet in packets:
        view.show(packet, None)
    view.finish()
    printer.close()
    return out.getvalue()


def numbers(text: str) -> list[str]:
    return [line.split("] ", 1)[1].split(" len=")[0] for line in text.splitlines()]


def test_line_view_numbers_each_direction_from_its_isn_as_wireshark_does() -> None:
    shown = numbers(render(_LineView, CONVERSATION))
    assert shown == ["seq=0 ack=0", "seq=0 ack=1", "seq=1 ack=1", "seq=1 ack=1", "seq=1 ack=11"]


def test_line_view_absolute_shows_the_numbers_on_the_wire() -> None:
    shown = numbers(render(_LineView, CONVERSATION, absolute=True))
    assert shown[1] == "seq=17 ack=3000000001"
    assert shown[4] == "seq=18 ack=3000000011"


def test_follow_shows_utf8_as_text_even_when_a_segment_cuts_a_character() -> None:
    text = render(_FollowView, CONVERSATION)
    assert "    U:straße\\n" in text.splitlines()
    cut = [
        *CONVERSATION[:3],
        segment(CLIENT, SERVER, PSH | ACK, 3_000_000_001, 18, b"U:stra\xc3"),
        segment(CLIENT, SERVER, PSH | ACK, 3_000_000_008, 18, b"\x9fe\n"),
    ]
    lines = render(_FollowView, cut).splitlines()
    assert lines[1].endswith("(7 bytes)") and lines[2] == "    U:stra"
    assert lines[3].endswith("(3 bytes)") and lines[4] == "    ße\\n"
    assert "\\xc3" not in "\n".join(lines)


def test_follow_escapes_what_is_not_text_and_a_character_that_never_completes() -> None:
    hostile = b"\x1b[2J\xc2\x9b31m\xe2\x80\xaeevil\xff\n\xf0\x9f"
    packets = [
        *CONVERSATION[:3],
        segment(CLIENT, SERVER, PSH | ACK, 3_000_000_001, 18, hostile),
        segment(CLIENT, SERVER, FIN | ACK, 3_000_000_001 + len(hostile), 18),
    ]
    lines = render(_FollowView, packets).splitlines()
    assert lines[2] == "    \\x1b[2J\\u009b31m\\u202eevil\\xff\\n"
    assert lines[3] == "    \\xf0\\x9f"  # held for its end, escaped at the FIN
    assert lines[4].endswith("closed its direction (FIN)")
