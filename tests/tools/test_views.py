"""Rendering details checked in-process: the --watch table's marks, unsupported platforms."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from socklab.cli.capture import escape_bytes, format_preview, hex_dump
from socklab.cli.environment import Environment
from socklab.cli.main import main
from socklab.cli.ports import _socket_table
from socklab.cli.status import ExitStatus
from socklab.tools.ports import RowStatus, SocketRow, WatchedRow


def environment() -> tuple[Environment, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Environment(io.StringIO(), out, err, {}, False, False), out, err


def test_watch_table_marks_new_and_closed_rows() -> None:
    row = SocketRow("tcp", "ipv6", "::1", 5, "::1", 6, "ESTABLISHED", 7, "x")
    rows = [WatchedRow(row, status, 0.0) for status in RowStatus]
    console = Console(file=io.StringIO(), width=200, force_terminal=True, color_system="standard")
    console.print(_socket_table(rows, show_status=True))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "new" in text and "closed" in text and "changed" in text
    assert "[::1]:5" in text and "tcp6" in text
    assert "\x1b[" in text  # coloured: green for new, red struck through for closed


@pytest.mark.parametrize(
    ("platform", "names"),
    [("darwin", "tcpdump -i lo0"), ("win32", "RawCap.exe 127.0.0.1"), ("freebsd14", "freebsd14")],
)
def test_unsupported_platforms_get_one_line(
    monkeypatch: pytest.MonkeyPatch, platform: str, names: str
) -> None:
    monkeypatch.setattr("socklab.tools.capture.runner.sys.platform", platform)
    env, _out, err = environment()
    assert main(["capture", "--duration", "1"], env) == ExitStatus.ERROR
    assert err.getvalue().startswith("socklab capture works on Linux only")
    assert names in err.getvalue() and len(err.getvalue().splitlines()) == 1


def test_payload_escaping_and_hex_dump() -> None:
    # The line view is unquoted: a quote needs no escape there; UTF-8 reads as typed.
    assert escape_bytes(b'U:a\n\r\t"\\\x00\xff') == 'U:a\\n\\r\\t"\\\\\\x00\\xff'
    assert escape_bytes("U:straße\x1b[2J".encode()) == "U:straße\\x1b[2J"
    assert format_preview(b'x"' * 25, limit=3) == '"x\\"x…" (50 bytes)'
    assert hex_dump(b"U:abc\n" + bytes(range(12))) == [
        "    0000  55 3a 61 62 63 0a 00 01 02 03 04 05 06 07 08 09  U:abc...........",
        "    0010  0a 0b                                            ..",
    ]
