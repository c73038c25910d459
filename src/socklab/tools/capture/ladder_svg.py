"""The ladder as an SVG picture: one diagram per connection, arrows between two ip:port columns.

Strategy: the same geometry as the live page's ladder (tools/live/static/live.js: two columns, one
row per arrow, the arrow's words above it) so a figure in the docs looks like the projected page.
The caller supplies the words (flags line and messages line per step, already translated: the
terminal ladder's own lines); ElementTree writes them as text nodes, so whatever a peer sent is
character data in the file, never markup. Pure: steps in, a string out.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from socklab.protocol.endpoints import format_endpoint
from socklab.tools.capture.ladder import LadderStep

SVG_NAMESPACE: Final = "http://www.w3.org/2000/svg"
WIDTH: Final = 1000
CLIENT_X: Final = 170
SERVER_X: Final = 830
HEADER: Final = 64  # the two endpoint names above each diagram
ROW: Final = 58
MESSAGE_ROW: Final = 22
DROP: Final = 22  # how far an arrow falls: time passes while it travels
GAP: Final = 40  # between two connections' diagrams
INK: Final = {"fg": "#000000", "muted": "#555555", "client": "#0044aa", "server": "#8a2c00"}
RST_INK: Final = "#c00000"


@dataclass(frozen=True, slots=True)
class StepWords:
    """What an arrow says: its flags line and its messages line ('' for none)."""

    flags: str
    messages: str


def render_ladder_svg(
    drawn: Sequence[tuple[LadderStep, StepWords]],
    names: Callable[[LadderStep], tuple[str, str, str]],
) -> str:
    """All connections of `drawn` (steps in capture order, with their words) as one SVG document.

    `names(first_step)` gives a connection's title and its two column captions (client, server).
    """
    connections: dict[tuple[str, int], list[tuple[LadderStep, StepWords]]] = {}
    for step, step_words in drawn:
        connections.setdefault((step.proto, step.connection), []).append((step, step_words))
    ElementTree.register_namespace("", SVG_NAMESPACE)
    root = ElementTree.Element(
        "svg",
        {
            "xmlns": SVG_NAMESPACE,
            "font-family": "DejaVu Sans, Arial, sans-serif",
            "font-size": "17",
        },
    )
    ElementTree.SubElement(
        root, "rect", {"x": "0", "y": "0", "width": str(WIDTH), "fill": "#ffffff"}
    )
    defs = ElementTree.SubElement(root, "defs")
    marker = ElementTree.SubElement(
        defs,
        "marker",
        {
            "id": "arrowhead",
            "viewBox": "0 0 10 10",
            "refX": "10",
            "refY": "5",
            "markerWidth": "9",
            "markerHeight": "9",
            "orient": "auto-start-reverse",
        },
    )
    ElementTree.SubElement(marker, "path", {"d": "M0,0 L10,5 L0,10 z", "fill": INK["fg"]})
    top = 0
    for connection_steps in connections.values():
        top = _draw_connection(root, connection_steps, top, names) + GAP
    height = max(top - GAP, 1)
    root.set("viewBox", f"0 0 {WIDTH} {height}")
    root.set("width", str(WIDTH))
    root.set("height", str(height))
    root[0].set("height", str(height))
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, "unicode") + "\n"


def _text(parent: ElementTree.Element, x: float, y: float, text: str, **attributes: str) -> None:
    node = ElementTree.SubElement(
        parent, "text", {"x": str(x), "y": str(y), "text-anchor": "middle", **attributes}
    )
    node.text = text


def _draw_connection(
    root: ElementTree.Element,
    drawn: list[tuple[LadderStep, StepWords]],
    top: int,
    names: Callable[[LadderStep], tuple[str, str, str]],
) -> int:
    steps = [step for step, _words in drawn]
    said = [step_words for _step, step_words in drawn]
    group = ElementTree.SubElement(root, "g", {"class": "connection"})
    title, client, server = names(steps[0])
    _text(group, WIDTH / 2, top + 22, title, **{"font-weight": "bold", "fill": INK["fg"]})
    for x, caption, endpoint in (
        (CLIENT_X, client, steps[0].client),
        (SERVER_X, server, steps[0].server),
    ):
        _text(group, x, top + 46, caption, **{"font-weight": "bold", "fill": INK["fg"]})
        _text(
            group,
            x,
            top + 66,
            format_endpoint(*endpoint),
            **{"font-family": "DejaVu Sans Mono, monospace", "fill": INK["fg"]},
        )
    bottom = top + HEADER + 16 + sum(ROW + (MESSAGE_ROW if w.messages else 0) for w in said)
    for x in (CLIENT_X, SERVER_X):
        ElementTree.SubElement(
            group,
            "line",
            {
                "x1": str(x),
                "y1": str(top + HEADER + 10),
                "x2": str(x),
                "y2": str(bottom),
                "stroke": INK["muted"],
                "stroke-width": "2",
            },
        )
    y_top = top + HEADER + 16
    start = steps[0].time
    for step, step_words in zip(steps, said, strict=True):
        y_top = _draw_arrow(group, step, step_words, y_top, start)
    return bottom


def _draw_arrow(
    parent: ElementTree.Element, step: LadderStep, words: StepWords, top: int, start: float
) -> int:
    colour = (
        RST_INK if "RST" in step.flags else INK["client"] if step.from_client else INK["server"]
    )
    arrow = ElementTree.SubElement(
        parent,
        "g",
        {"class": "arrow " + ("from-client" if step.from_client else "from-server")},
    )
    y = top + 26 + (MESSAGE_ROW if words.messages else 0)
    from_x, to_x = (CLIENT_X, SERVER_X) if step.from_client else (SERVER_X, CLIENT_X)
    line = {
        "x1": str(from_x),
        "y1": str(y),
        "x2": str(to_x),
        "y2": str(y + DROP),
        "stroke": colour,
        "stroke-width": "3",
        "marker-end": "url(#arrowhead)",
    }
    if step.retransmission:
        line["stroke-dasharray"] = "8 6"
    ElementTree.SubElement(arrow, "line", line)
    middle = (CLIENT_X + SERVER_X) / 2
    _text(arrow, middle, top + 18, words.flags, **{"font-weight": "bold", "fill": colour})
    if words.messages:
        _text(
            arrow,
            middle,
            top + 40,
            words.messages,
            **{"font-family": "DejaVu Sans Mono, monospace", "fill": INK["fg"]},
        )
    seconds = f"{step.time - start:.3f} s"
    time_label = ElementTree.SubElement(
        arrow,
        "text",
        {"x": "4", "y": str(y + 6), "font-size": "15", "fill": INK["muted"]},
    )
    time_label.text = seconds
    return top + ROW + (MESSAGE_ROW if words.messages else 0)


__all__ = ["StepWords", "render_ladder_svg"]
