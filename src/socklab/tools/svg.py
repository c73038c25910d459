"""What the SVG pictures share (the capture ladder, the bench chart): text escaping and the frame.

The pictures are written by hand, a few element kinds each, so no library is needed. Text is
always character data, never markup: `<`, `&`, `>` and quotes are escaped, and every character
XML 1.0 forbids (C0 controls, lone surrogates, U+FFFE/U+FFFF) becomes U+FFFD, so a file name or
a label can never make the document ill-formed. A peer's bytes are escaped for a terminal (the
project's one escaper, which also bounds them) before they reach this module; this one makes
sure the result stays text in XML.

Made for a projector: large type, dark text on white, thick lines; a `prefers-color-scheme`
rule turns the picture dark where the viewer asks for it (a browser, GitHub), and viewers that
ignore the `<style>` still get the light version from the presentation attributes.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

SVG_NAMESPACE = "http://www.w3.org/2000/svg"
FONT_FAMILY = "DejaVu Sans Mono, Menlo, Consolas, monospace"
# Monospace fonts advance about 0.6 em per character: enough to size the picture to its text.
CHARACTER_WIDTH_EM = 0.6
# A label longer than this is cut with "…" (after the terminal escaper, which already bounds a
# message; this bounds what is left, such as a very long file name in a title).
MAX_LABEL_CHARACTERS = 120

INK = "#111111"
PAPER = "#ffffff"
GRID = "#c8c8c8"

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ATTRIBUTE_ENTITIES = {'"': "&quot;", "'": "&apos;"}

_STYLE = """
text {{ font-family: {font}; white-space: pre; }}
@media (prefers-color-scheme: dark) {{
  .paper {{ fill: #161616; }}
  .ink {{ fill: #f0f0f0; }}
  .rule {{ stroke: #f0f0f0; }}
  .grid {{ stroke: #555555; }}{dark}
}}
"""


def xml_text(text: str, *, limit: int = MAX_LABEL_CHARACTERS) -> str:
    """`text` as character data (or an attribute value): escaped, valid XML, at most `limit`."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return escape(_NOT_XML.sub("\ufffd", text), _ATTRIBUTE_ENTITIES)


def text_width(text: str, font_px: float) -> float:
    """The width a monospace `text` takes at `font_px`, in pixels."""
    return min(len(text), MAX_LABEL_CHARACTERS) * font_px * CHARACTER_WIDTH_EM


def open_document(
    width: float, height: float, title: str, *, dark_rules: tuple[str, ...] = ()
) -> list[str]:
    """The start of a picture: root element, accessible title, style and white background.

    `dark_rules` are CSS rules of the picture's own for the dark scheme (lighter colours).
    """
    dark = "".join(f"\n  {rule}" for rule in dark_rules)
    return [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="{SVG_NAMESPACE}" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img">',
        f"<title>{xml_text(title)}</title>",
        f"<style>{_STYLE.format(font=FONT_FAMILY, dark=dark)}</style>",
        f'<rect class="paper" x="0" y="0" width="{width:.0f}" height="{height:.0f}" '
        f'fill="{PAPER}"/>',
    ]


def close_document(lines: list[str]) -> str:
    return "\n".join([*lines, "</svg>", ""])


def text_element(
    x: float,
    y: float,
    text: str,
    *,
    size: float,
    anchor: str = "start",
    weight: str = "normal",
    fill: str = INK,
    css_class: str = "ink",
) -> str:
    """One line of text; `fill` other than INK keeps its colour in the dark scheme too."""
    class_attribute = f' class="{css_class}"' if css_class else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size:.0f}" text-anchor="{anchor}" '
        f'font-weight="{weight}" fill="{fill}"{class_attribute}>{xml_text(text)}</text>'
    )


__all__ = [
    "FONT_FAMILY",
    "GRID",
    "INK",
    "MAX_LABEL_CHARACTERS",
    "PAPER",
    "SVG_NAMESPACE",
    "close_document",
    "open_document",
    "text_element",
    "text_width",
    "xml_text",
]
