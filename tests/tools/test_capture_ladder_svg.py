"""`capture --ladder --svg FILE`: the ladder as a picture, well-formed, labelled, and safe.

The conversation is a real one: `socklab converter client U:hello L:WORLD C:` against the TCP
server and `--udp U:datagram` against the UDP server, captured on loopback with
`socklab capture -w tests/fixtures/captures/converter-conversation.pcapng` (the recipe is in
the Makefile's `capture-fixture` target). Hostile labels are fed in-process as packets built by
the tests' own encoder. Every picture is parsed with ElementTree, as any SVG viewer would.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from socklab.i18n import set_language
from socklab.tools.capture.ladder import LadderBuilder, LadderStep
from socklab.tools.capture.ladder_svg import MAX_DRAWN_STEPS, render_ladder_svg
from socklab.tools.capture.packets import LINKTYPE_RAW, TcpFlags, decode_frame
from socklab.tools.capture.pcap import encode_file_header, encode_record
from socklab.tools.capture.savefile import read_capture
from socklab.tools.svg import MAX_LABEL_CHARACTERS, SVG_NAMESPACE
from tests.socklab_process import SocklabProcess, free_port, run_socklab
from tests.tools.packet_builders import build_ipv4_tcp, build_ipv4_udp

CONVERSATION = (
    Path(__file__).parent.parent / "fixtures" / "captures" / "converter-conversation.pcapng"
)
SVG = f"{{{SVG_NAMESPACE}}}"
CLIENT, SERVER = ("127.0.0.1", 40000), ("127.0.0.1", 50000)


@pytest.fixture
def english() -> Iterator[None]:
    set_language("en")  # an in-process test before this one may have left German behind
    yield


def texts_of(svg: str) -> list[str]:
    """Every <text> of a picture, as a viewer shows it; fails unless the document is SVG."""
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert float(root.attrib["width"]) > 0 and float(root.attrib["height"]) > 0
    return ["".join(element.itertext()) for element in root.iter(f"{SVG}text")]


def steps_of_file(path: Path) -> list[LadderStep]:
    builder = LadderBuilder()
    with path.open("rb") as stream:
        _format, frames = read_capture(stream)
        packets = [decode_frame(frame.link_type, frame.data, frame.time) for frame in frames]
    return [builder.add(packet) for packet in packets if packet is not None]


def steps_of(frames: list[bytes]) -> list[LadderStep]:
    builder = LadderBuilder()
    steps = []
    for number, frame in enumerate(frames):
        packet = decode_frame(LINKTYPE_RAW, frame, 1000.0 + number / 1000)
        assert packet is not None
        steps.append(builder.add(packet))
    return steps


def assert_conversation_drawn(texts: list[str]) -> None:
    joined = "\n".join(texts)
    assert "TCP connection 1: client 127.0.0.1:" in joined
    # The handshake, each message named with its kind, the close.
    assert "SYN seq=0" in texts
    assert "SYN+ACK seq=0 ack=1" in texts
    assert "ACK seq=1 ack=1" in texts
    assert any(
        text.startswith("greeting \"Hi I'm your upper/lowercase converter.") for text in texts
    )
    for label in ('request "U:hello"', 'reply "HELLO"', 'request "L:WORLD"', 'reply "world"'):
        assert label in texts
    assert 'close request "C:"' in texts
    assert sum(text.startswith("FIN+ACK") for text in texts) == 2
    assert "UDP flow 1: 127.0.0.1:" in joined
    assert 'request "U:datagram"' in texts and 'reply "DATAGRAM"' in texts


@pytest.mark.usefixtures("english")
def test_a_captured_conversation_is_drawn_with_its_handshake_messages_and_close() -> None:
    steps = steps_of_file(CONVERSATION)
    svg = render_ladder_svg(steps, title="converter")
    texts = texts_of(svg)
    assert_conversation_drawn(texts)
    assert texts[0] == "converter"
    assert "16 packets drawn" in texts[-1]
    root = ET.fromstring(svg)
    arrows = [line for line in root.iter(f"{SVG}line") if "marker-end" in line.attrib]
    assert len(arrows) == len(steps)
    # Arrows from the client point right, replies left: the SYN and the SYN+ACK cross in turn.
    assert float(arrows[0].attrib["x1"]) < float(arrows[0].attrib["x2"])
    assert float(arrows[1].attrib["x1"]) > float(arrows[1].attrib["x2"])


@pytest.mark.usefixtures("english")
def test_absolute_numbers_are_the_ones_on_the_wire() -> None:
    steps = steps_of(
        [
            build_ipv4_tcp(CLIENT, SERVER, flags=TcpFlags.SYN, seq=1000),
            build_ipv4_tcp(SERVER, CLIENT, flags=TcpFlags.SYN | TcpFlags.ACK, seq=5000, ack=1001),
        ]
    )
    assert "SYN+ACK seq=0 ack=1" in texts_of(render_ladder_svg(steps, title="t"))
    texts = texts_of(render_ladder_svg(steps, title="t", absolute=True))
    assert "SYN seq=1000" in texts and "SYN+ACK seq=5000 ack=1001" in texts


HOSTILE = b'<script>alert("x")</script>\x1b]0;PWNED\x07\x1b[2J\x00&amp;\'"\r\n'


@pytest.mark.usefixtures("english")
def test_a_peer_s_hostile_bytes_come_out_as_bounded_text() -> None:
    flood = b"U:" + b"<" * 5000 + b"\n"
    steps = steps_of(
        [
            build_ipv4_tcp(CLIENT, SERVER, flags=TcpFlags.SYN, seq=7),
            build_ipv4_tcp(SERVER, CLIENT, flags=TcpFlags.SYN | TcpFlags.ACK, seq=70, ack=8),
            build_ipv4_tcp(
                CLIENT, SERVER, flags=TcpFlags.PSH | TcpFlags.ACK, seq=8, payload=HOSTILE
            ),
            build_ipv4_tcp(
                CLIENT,
                SERVER,
                flags=TcpFlags.PSH | TcpFlags.ACK,
                seq=8 + len(HOSTILE),
                payload=flood,
            ),
            build_ipv4_udp(CLIENT, SERVER, b"\xff\xfe<svg onload=alert(1)>\xc2\x85"),
        ]
    )
    # A title is the user's own text, yet a file name may hold control characters too.
    svg = render_ladder_svg(steps, title="capture\x01<b>.pcap")
    root = ET.fromstring(svg)  # well-formed: nothing a peer sent became markup
    tags = {element.tag for element in root.iter()}
    assert tags <= {
        f"{SVG}{name}"
        for name in ("svg", "title", "style", "rect", "defs", "marker", "path", "line", "text")
    }
    assert "\x1b" not in svg and "\x00" not in svg and "\x07" not in svg and "\x01" not in svg
    texts = texts_of(svg)
    joined = "\n".join(texts)
    # The markup is shown as the characters the peer sent, its controls as escapes.
    assert '<script>alert(\\"x\\")</script>\\x1b]0;PWNED\\x07\\x1b' in joined
    assert "<svg onload=alert(1)>" in joined and "\\xff\\xfe" in joined
    assert "capture\ufffd<b>.pcap" in texts
    # The 5,000-byte message is cut and its size named; no label grows without bound.
    assert "(5,002 bytes)" in joined
    assert all(len(text) <= MAX_LABEL_CHARACTERS for text in texts)


@pytest.mark.usefixtures("english")
def test_many_messages_in_one_segment_are_listed_up_to_a_bound() -> None:
    burst = b"".join(b"U:m%d\n" % number for number in range(9))
    steps = steps_of(
        [
            build_ipv4_tcp(CLIENT, SERVER, flags=TcpFlags.SYN, seq=7),
            build_ipv4_tcp(CLIENT, SERVER, flags=TcpFlags.PSH | TcpFlags.ACK, seq=8, payload=burst),
        ]
    )
    texts = texts_of(render_ladder_svg(steps, title="t"))
    assert "9 messages in one segment:" in texts
    assert 'request "U:m0"' in texts and 'request "U:m3"' in texts
    assert 'request "U:m4"' not in texts
    assert "… and 5 more messages" in texts


def test_german_pictures_speak_german() -> None:
    set_language("de")
    try:
        texts = texts_of(render_ladder_svg(steps_of_file(CONVERSATION), title="t"))
    finally:
        set_language("en")
    joined = "\n".join(texts)
    assert "TCP-Verbindung 1" in joined
    assert "16 Pakete gezeichnet" in texts[-1]


# --- the command ----------------------------------------------------------------------------------


def test_capture_r_ladder_svg_writes_the_picture(tmp_path: Path) -> None:
    picture = tmp_path / "ladder.svg"
    done = run_socklab(["capture", "-r", str(CONVERSATION), "--ladder", "--svg", str(picture)])
    assert done.returncode == 0, done.stderr
    assert f"Ladder picture of 16 packets written to {picture}." in done.stdout
    assert "SYN+ACK seq=0 ack=1" in done.stdout  # the terminal ladder is still shown
    assert_conversation_drawn(texts_of(picture.read_text(encoding="utf-8")))


def test_a_capture_too_long_for_a_picture_keeps_the_first_steps_and_says_so(tmp_path: Path) -> None:
    datagrams = MAX_DRAWN_STEPS + 7
    capture = tmp_path / "many.pcap"
    frame = build_ipv4_udp(CLIENT, SERVER, b"U:x")
    capture.write_bytes(
        encode_file_header(LINKTYPE_RAW)
        + b"".join(encode_record(1000.0 + n, frame) for n in range(datagrams))
    )
    picture = tmp_path / "many.svg"
    done = run_socklab(["capture", "-r", str(capture), "--ladder", "--svg", str(picture)])
    assert done.returncode == 0, done.stderr
    texts = texts_of(picture.read_text(encoding="utf-8"))
    assert texts[-1].startswith(
        f"{MAX_DRAWN_STEPS} packets drawn; 7 more not drawn (a picture keeps the first {MAX_DRAWN_STEPS})"
    )
    assert texts.count('request "U:x"') == MAX_DRAWN_STEPS


def test_svg_without_ladder_is_a_one_line_usage_error(tmp_path: Path) -> None:
    picture = tmp_path / "ladder.svg"
    done = run_socklab(["capture", "-r", str(CONVERSATION), "--svg", str(picture)])
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "socklab capture: --svg draws the ladder: add --ladder (socklab capture --ladder --svg FILE)"
    )
    assert not picture.exists()


@pytest.mark.parametrize("where", ["missing-folder", "a-folder"])
def test_a_picture_that_cannot_be_written_is_one_line(tmp_path: Path, where: str) -> None:
    picture = tmp_path / "nowhere" / "ladder.svg" if where == "missing-folder" else tmp_path
    done = run_socklab(["capture", "-r", str(CONVERSATION), "--ladder", "--svg", str(picture)])
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith(f"socklab capture: cannot write the picture {picture}: ")
    assert lines[0].endswith("Choose a path in a folder you can write to.")
    assert done.stdout == ""  # checked before the file is read


def test_a_file_that_cannot_be_read_leaves_no_empty_picture(tmp_path: Path) -> None:
    picture = tmp_path / "ladder.svg"
    broken = tmp_path / "broken.pcap"
    broken.write_bytes(b"not a capture file at all")
    done = run_socklab(["capture", "-r", str(broken), "--ladder", "--svg", str(picture)])
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert not picture.exists()


def test_lang_de_draws_a_german_picture(tmp_path: Path) -> None:
    picture = tmp_path / "leiter.svg"
    done = run_socklab(
        ["--lang", "de", "capture", "-r", str(CONVERSATION), "--ladder", "--svg", str(picture)]
    )
    assert done.returncode == 0, done.stderr
    texts = texts_of(picture.read_text(encoding="utf-8"))
    assert any(text.startswith("TCP-Verbindung 1") for text in texts)


@pytest.mark.serial  # counts packets on loopback: alone, after the parallel part of `make test`
def test_a_live_capture_draws_its_ladder_when_stopped(
    start_socklab: Callable[..., SocklabProcess], tmp_path: Path
) -> None:
    """As root (CI runs as root): stopped like Ctrl+C (SIGTERM), the capture writes the picture."""
    port = free_port()
    server = start_socklab(["converter", "server", "--port", str(port)])
    server.wait_listening()
    picture = tmp_path / "live.svg"
    capture = start_socklab(["capture", "--port", str(port), "--ladder", "--svg", str(picture)])
    capture.wait_for_line(r"^Capturing on lo ", timeout_s=30)
    client = run_socklab(["converter", "client", "--port", str(port), "U:live", "C:"])
    assert client.returncode == 0, client.stderr
    for arrow in (r"FIN\+ACK", r"FIN\+ACK", r"-- ACK seq="):  # the four-way close, in order
        capture.wait_for_line(arrow)
    assert capture.stop() == 0
    assert any(line.startswith("Ladder picture of ") for line in capture.stdout_lines)
    texts = texts_of(picture.read_text(encoding="utf-8"))
    assert "SYN seq=0" in texts and 'request "U:live"' in texts and 'reply "LIVE"' in texts
    assert sum(text.startswith("FIN+ACK") for text in texts) == 2
