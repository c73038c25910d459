"""`bench --compare --svg`: the models' comparison as a bar chart, requests/s and memory per model.

Strategy: horizontal bars, one group per scenario and one for peak memory, each group scaled to
its own largest value (the scenarios differ by orders of magnitude; within one, the bars compare
the models). Every bar carries its number, so the picture needs no axis to be read, and a model
that failed or did not run in a scenario says so in words. Colours are the Okabe-Ito palette
(told apart with colour blindness), one per model, the same in every group. Pure: figures in, an
SVG string out (ElementTree writes the text nodes).
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

SVG_NAMESPACE: Final = "http://www.w3.org/2000/svg"
WIDTH: Final = 1000
LABEL_X: Final = 230  # bars start here; the model names end here
BAR_SPACE: Final = 560
BAR: Final = 26
BAR_GAP: Final = 8
GROUP_GAP: Final = 24
HEADING: Final = 34
PALETTE: Final = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
INK: Final = "#000000"
MUTED: Final = "#555555"


@dataclass(frozen=True, slots=True)
class ChartWords:
    """Every word of the chart, translated by the caller."""

    title: str
    memory: str  # the memory group's heading
    failed: str  # in place of a bar: the run failed
    not_run: str  # in place of a bar: the model does not take part in this scenario
    not_measured: str  # in place of a memory bar: no figure (the server was not bench's own)
    requests_unit: str  # "{value} req/s"
    memory_unit: str  # "{value} MB"
    # A whole number as the language writes it ("65,537", German "65.537")
    number: Callable[[float], str] = lambda value: f"{value:,.0f}"


def render_comparison_svg(
    servers: Sequence[str],
    scenarios: Sequence[str],
    requests_per_s: Mapping[tuple[str, str], float | None],
    peak_rss_bytes: Mapping[str, int | None],
    words: ChartWords,
) -> str:
    """The chart. A (server, scenario) missing from `requests_per_s` did not run; None failed.

    Figures are floats (an int is drawn as its float); a word is drawn where there is none.
    """
    ElementTree.register_namespace("", SVG_NAMESPACE)
    root = ElementTree.Element(
        "svg", {"xmlns": SVG_NAMESPACE, "font-family": "DejaVu Sans, Arial, sans-serif"}
    )
    background = ElementTree.SubElement(root, "rect", {"x": "0", "y": "0", "fill": "#ffffff"})
    _text(root, WIDTH / 2, 32, words.title, size=22, bold=True, anchor="middle")
    colours = {server: PALETTE[index % len(PALETTE)] for index, server in enumerate(servers)}
    top = 56
    for scenario in scenarios:
        values: dict[str, float | str] = {}
        for server in servers:
            key = (server, scenario)
            figure = requests_per_s.get(key)
            values[server] = (
                float(figure)
                if figure is not None
                else words.failed
                if key in requests_per_s
                else words.not_run
            )
        top = _group(root, top, scenario, values, colours, words, words.requests_unit, 1.0)
    memory: dict[str, float | str] = {}
    for server in servers:
        peak = peak_rss_bytes.get(server)
        memory[server] = float(peak) if peak else words.not_measured
    top = _group(root, top, words.memory, memory, colours, words, words.memory_unit, 1e6)
    height = top
    for element in (root, background):
        element.set("width", str(WIDTH))
        element.set("height", str(height))
    root.set("viewBox", f"0 0 {WIDTH} {height}")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, "unicode") + "\n"


def _group(
    root: ElementTree.Element,
    top: int,
    heading: str,
    values: Mapping[str, float | str],
    colours: Mapping[str, str],
    words: ChartWords,
    unit: str,
    divisor: float,
) -> int:
    group = ElementTree.SubElement(root, "g", {"class": "group"})
    _text(group, 20, top + 22, heading, size=19, bold=True)
    y = top + HEADING
    numbers = [value for value in values.values() if isinstance(value, float)]
    largest = max(numbers, default=0.0) or 1.0
    for server, value in values.items():
        _text(group, LABEL_X - 12, y + BAR - 7, server, size=17, anchor="end")
        if isinstance(value, float):
            length = max(2.0, BAR_SPACE * value / largest)
            bar = ElementTree.SubElement(
                group,
                "rect",
                {
                    "class": "bar",
                    "x": str(LABEL_X),
                    "y": str(y),
                    "width": f"{length:.1f}",
                    "height": str(BAR),
                    "fill": colours[server],
                },
            )
            ElementTree.SubElement(bar, "title").text = f"{server}: {words.number(value)}"
            shown = unit.format(value=words.number(value / divisor))
            _text(group, LABEL_X + length + 8, y + BAR - 7, shown, size=16)
        else:
            _text(group, LABEL_X, y + BAR - 7, value, size=16, fill=MUTED)
        y += BAR + BAR_GAP
    return y + GROUP_GAP


def _text(
    parent: ElementTree.Element,
    x: float,
    y: float,
    text: str,
    *,
    size: int,
    bold: bool = False,
    anchor: str = "start",
    fill: str = INK,
) -> None:
    attributes = {
        "x": f"{x:g}",
        "y": f"{y:g}",
        "font-size": str(size),
        "text-anchor": anchor,
        "fill": fill,
    }
    if bold:
        attributes["font-weight"] = "bold"
    ElementTree.SubElement(parent, "text", attributes).text = text


__all__ = ["ChartWords", "render_comparison_svg"]
