"""The ladder as a picture (`capture --ladder --svg FILE`): the terminal ladder, drawn.

Two vertical lines, the client's on the left and the server's on the right, and one arrow per
segment (or datagram) going down the page in capture order, labelled with its flags and numbers
as the terminal ladder labels it; the messages inside each segment are written beside it, one
per line. A new connection starts with its heading and its two ip:port names above the lines;
connections that overlap in time share the lines, and each arrow names its connection on the
left (`tcp#2`), with the seconds since that connection began.

Pure: ladder steps in, SVG text out. Every word comes from `ladder_labels` (the same words as
the terminal, translated), every message is escaped and bounded there, and everything is made
XML text by `socklab.tools.svg`. A picture holds at most `MAX_DRAWN_STEPS` arrows; the caller
keeps only those and counts the rest, which the picture names at its foot.
"""

from __future__ import annotations

from collections.abc import Sequence

from socklab.i18n import _, ngettext
from socklab.protocol.endpoints import format_endpoint
from socklab.tools.capture.ladder import LadderStep
from socklab.tools.capture.ladder_labels import (
    describe_arrow,
    describe_connection,
    describe_step_notes,
)
from socklab.tools.svg import (
    GRID,
    close_document,
    open_document,
    text_element,
    text_width,
)

# A ladder is read, not scrolled through: past a few hundred arrows it is a list, and the
# terminal ladder (or Wireshark) serves better. The picture stops there and says so.
MAX_DRAWN_STEPS = 400
# Message lines beside one arrow: a segment carrying many messages shows this many and a count.
MAX_NOTE_LINES = 4

FONT_PX = 20  # readable from the back of a lecture room
SMALL_PX = 17
TITLE_PX = 26
MARGIN = 24
LINE_GAP = 6
ROW_PX = 64  # one arrow: its label above, its slope, room to breathe
SLOPE_PX = 18  # an arrow goes down as it crosses: time passes while a segment travels
HEADING_PX = 44
COLUMNS_PX = 34
MIN_LADDER_PX = 560

# Each kind of arrow: its colour on white, and a lighter one for the dark scheme.
ARROW_COLOURS = {
    "client": ("#0b4f9c", "#7ab8ff"),  # from the client: blue
    "server": ("#a33d00", "#ffa366"),  # from the server: dark orange
    "reset": ("#c00000", "#ff7070"),  # RST: red
}
_DARK_RULES = tuple(
    f".arrow-{kind} {{ stroke: {dark}; }} .label-{kind} {{ fill: {dark}; }}"
    for kind, (_light, dark) in ARROW_COLOURS.items()
)


def _arrow_kind(step: LadderStep) -> str:
    if "RST" in step.flags:
        return "reset"
    return "client" if step.from_client else "server"


def _note_lines(step: LadderStep) -> list[str]:
    retransmission, heading, pieces = describe_step_notes(step)
    lines = [note for note in (retransmission, heading) if note]
    shown = pieces[:MAX_NOTE_LINES]
    lines += shown
    if len(pieces) > len(shown):
        hidden = len(pieces) - len(shown)
        lines.append(
            ngettext("… and {count} more message", "… and {count} more messages", hidden).format(
                count=hidden
            )
        )
    return lines


def _gutter_text(step: LadderStep, elapsed_s: float) -> str:
    return f"{step.proto}#{step.connection} {elapsed_s:6.3f}"


def render_ladder_svg(
    steps: Sequence[LadderStep],
    *,
    title: str,
    absolute: bool = False,
    omitted: int = 0,
) -> str:
    """The ladder of `steps` (in capture order) as an SVG document.

    `title` names the source (a file, an interface); `omitted` counts the steps after the ones
    given that were not kept, named at the foot of the picture.
    """
    steps = steps[:MAX_DRAWN_STEPS]
    starts: dict[tuple[str, int], float] = {}
    rows: list[tuple[LadderStep, str, float, list[str]]] = []
    for step in steps:
        key = (step.proto, step.connection)
        if step.opens_connection or key not in starts:
            starts[key] = step.time
        elapsed = step.time - starts[key]
        rows.append((step, describe_arrow(step, absolute=absolute), elapsed, _note_lines(step)))

    gutter = max([text_width(_gutter_text(s, e), SMALL_PX) for s, _l, e, _n in rows] + [0.0])
    widest_columns = max(
        [
            text_width(format_endpoint(*s.client), FONT_PX)
            + text_width(format_endpoint(*s.server), FONT_PX)
            for s, *_rest in rows
            if s.opens_connection
        ]
        + [0.0]
    )
    ladder = max(
        MIN_LADDER_PX,
        max([text_width(label, FONT_PX) + 60 for _s, label, _e, _n in rows] + [0.0]),
        widest_columns / 2 + 80,
    )
    left = MARGIN + gutter + 16 + widest_columns / 4
    right = left + ladder
    notes_x = right + 24
    notes_width = max(
        [text_width(line, FONT_PX) for *_rest, notes in rows for line in notes] + [0.0]
    )
    headings_width = max(
        [text_width(describe_connection(s), FONT_PX) + MARGIN for s, *_rest in rows] + [0.0]
    )
    footer = _footer(len(steps), omitted)
    width = max(
        notes_x + notes_width + MARGIN,
        headings_width + MARGIN,
        text_width(title, TITLE_PX) + 2 * MARGIN,
        text_width(footer, SMALL_PX) + 2 * MARGIN,
    )

    body: list[str] = []
    y = MARGIN + TITLE_PX
    body.append(text_element(MARGIN, y, title, size=TITLE_PX, weight="bold"))
    y += LINE_GAP * 2
    # The two lines run from under each connection's column names to the next heading.
    spans: list[tuple[float, float]] = []
    span_top: float | None = None
    for step, label, elapsed, notes in rows:
        if step.opens_connection:
            if span_top is not None:
                spans.append((span_top, y))
            y += HEADING_PX
            body.append(
                text_element(MARGIN, y, describe_connection(step), size=FONT_PX, weight="bold")
            )
            y += COLUMNS_PX
            body.append(
                text_element(left, y, format_endpoint(*step.client), size=FONT_PX, anchor="middle")
            )
            body.append(
                text_element(right, y, format_endpoint(*step.server), size=FONT_PX, anchor="middle")
            )
            body.append(
                f'<line class="rule" x1="{left:.1f}" y1="{y + 8:.1f}" x2="{right:.1f}" '
                f'y2="{y + 8:.1f}" stroke="{GRID}" stroke-width="1"/>'
            )
            y += LINE_GAP * 2
            span_top = y
        elif span_top is None:
            span_top = y  # the first packets belong to a connection that began before
        top = y + FONT_PX + LINE_GAP
        kind = _arrow_kind(step)
        colour = ARROW_COLOURS[kind][0]
        start, end = (left, right) if step.from_client else (right, left)
        body.append(
            f'<line class="arrow-{kind}" x1="{start:.1f}" y1="{top:.1f}" x2="{end:.1f}" '
            f'y2="{top + SLOPE_PX:.1f}" stroke="{colour}" stroke-width="3" '
            f'marker-end="url(#head-{kind})"/>'
        )
        if label:
            body.append(
                text_element(
                    (left + right) / 2,
                    top - LINE_GAP,
                    label,
                    size=FONT_PX,
                    anchor="middle",
                    fill=colour,
                    css_class=f"label-{kind}",
                    weight="bold",
                )
            )
        body.append(
            text_element(MARGIN, top + SLOPE_PX / 2 + 6, _gutter_text(step, elapsed), size=SMALL_PX)
        )
        for index, note in enumerate(notes):
            body.append(
                text_element(notes_x, top + 6 + index * (FONT_PX + LINE_GAP), note, size=FONT_PX)
            )
        y += max(ROW_PX, FONT_PX + LINE_GAP + len(notes) * (FONT_PX + LINE_GAP) + 8)
    if span_top is not None:
        spans.append((span_top, y + LINE_GAP))
    y += MARGIN + SMALL_PX
    body.append(text_element(MARGIN, y, footer, size=SMALL_PX))
    height = y + MARGIN

    document = open_document(width, height, title, dark_rules=_DARK_RULES)
    document.append("<defs>")
    for kind, (colour, _dark) in ARROW_COLOURS.items():
        document.append(
            f'<marker id="head-{kind}" viewBox="0 0 10 10" refX="10" refY="5" '
            f'markerWidth="5" markerHeight="5" orient="auto-start-reverse">'
            f'<path class="label-{kind}" d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
        )
    document.append("</defs>")
    for span_top, span_bottom in spans:
        for x in (left, right):
            document.append(
                f'<line class="rule" x1="{x:.1f}" y1="{span_top:.1f}" x2="{x:.1f}" '
                f'y2="{span_bottom:.1f}" stroke="#111111" stroke-width="3"/>'
            )
    document += body
    return close_document(document)


def _footer(drawn: int, omitted: int) -> str:
    line = ngettext("{count} packet drawn", "{count} packets drawn", drawn).format(count=drawn)
    if omitted:
        line += "; " + ngettext(
            "{count} more not drawn (a picture keeps the first {limit})",
            "{count} more not drawn (a picture keeps the first {limit})",
            omitted,
        ).format(count=omitted, limit=MAX_DRAWN_STEPS)
    line += " · " + _("blue: client to server, orange: server to client, red: reset")
    return line


__all__ = ["MAX_DRAWN_STEPS", "render_ladder_svg"]
