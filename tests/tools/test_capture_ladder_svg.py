"""`socklab capture --ladder --svg FILE`: the ladder view's picture, fed crafted packets in-process."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from socklab.cli.capture import _LadderView, _Printer
from socklab.cli.environment import Environment
from socklab.cli.status import ExitStatus
from socklab.tools.capture.packets import TcpFlags
from tests.socklab_process import run_socklab
from tests.tools.test_capture_streams import CLIENT, SERVER, segment

SVG = "{http://www.w3.org/2000/svg}"
SYN, ACK, PSH, FIN = TcpFlags.SYN, TcpFlags.ACK, TcpFlags.PSH, TcpFlags.FIN


def draw(tmp_path: Path, packets: list) -> tuple[ElementTree.Element, str]:  # type: ignore[type-arg]
    out = io.StringIO()
    printer = _Printer(
        Environment(io.StringIO(), out, io.StringIO(), {}, False, False), hex_dump=False
    )
    path = tmp_path / "ladder.svg"
    view = _LadderView(printer, svg_path=path)
    for packet in packets:
        view.show(packet, None)
    view.finish()
    printer.close()
    return ElementTree.parse(path).getroot(), out.getvalue()


def test_the_picture_has_one_arrow_per_segment_with_the_terminal_ladders_words(
    tmp_path: Path,
) -> None:
    markup = b"U:<b>x</b><script>alert(1)</script>\n"
    root, out = draw(
        tmp_path,
        [
            segment(CLIENT, SERVER, SYN, 1000),
            segment(SERVER, CLIENT, SYN | ACK, 5000, 1001),
            segment(CLIENT, SERVER, ACK, 1001, 5001),
            segment(CLIENT, SERVER, PSH | ACK, 1001, 5001, markup),
            segment(CLIENT, SERVER, FIN | ACK, 1001 + len(markup), 5001),
        ],
    )
    assert root.tag == f"{SVG}svg"
    arrows = root.findall(f".//{SVG}g[@class='arrow from-client']") + root.findall(
        f".//{SVG}g[@class='arrow from-server']"
    )
    assert len(arrows) == 5
    texts = [node.text or "" for node in root.iter(f"{SVG}text")]
    assert "SYN seq=0" in texts and "SYN+ACK seq=0 ack=1" in texts
    # what the peer sent is character data: no element of the peer's making exists
    assert any("<b>x</b><script>alert(1)</script>" in text for text in texts)
    assert root.find(f".//{SVG}script") is None and root.find(f".//{SVG}b") is None
    assert "TCP connection 1" in texts
    assert f"Ladder of 5 arrows drawn into {tmp_path / 'ladder.svg'}" in out


def test_svg_needs_the_ladder_view(tmp_path: Path) -> None:
    result = run_socklab(["capture", "--svg", str(tmp_path / "x.svg"), "--duration", "1"])
    assert result.returncode == ExitStatus.USAGE
    assert result.stderr == "socklab capture: --svg draws the ladder: use it with --ladder\n"
