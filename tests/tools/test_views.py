"""Rendering details checked in-process: the --watch table's marks, unsupported platforms."""

from __future__ import annotations

import dataclasses
import io
import re

import pytest
from rich.console import Console

from socklab.cli.capture import HEX_INDENT, escape_bytes, format_preview
from socklab.cli.environment import Environment
from socklab.cli.main import main
from socklab.cli.ports import _socket_table, plain_table_lines, print_socket_table, watch_view
from socklab.cli.status import ExitStatus
from socklab.protocol.escaping import hexdump_lines
from socklab.tools.ports import RowStatus, SocketRow, SocketTable, WatchedRow


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
    assert err.getvalue().startswith("socklab capture: packet capture works on Linux only")
    assert names in err.getvalue() and len(err.getvalue().splitlines()) == 1


def test_payload_escaping_and_hex_dump() -> None:
    # The line view is unquoted: a quote needs no escape there; UTF-8 reads as typed.
    assert escape_bytes(b'U:a\n\r\t"\\\x00\xff') == 'U:a\\n\\r\\t"\\\\\\x00\\xff'
    assert escape_bytes("U:straße\x1b[2J".encode()) == "U:straße\\x1b[2J"
    assert format_preview(b'x"' * 25, limit=3) == '"x\\"x…" (50 bytes)'
    assert hexdump_lines(b"U:abc\n" + bytes(range(12)), indent=HEX_INDENT, bars=False) == [
        "    0000  55 3a 61 62 63 0a 00 01 02 03 04 05 06 07 08 09  U:abc...........",
        "    0010  0a 0b                                            ..",
    ]


# --- `socklab ports`: the plain table, --explain's TIME_WAIT, the --watch caption ----------------

ROWS = [
    SocketRow("tcp", "ipv4", "127.0.0.1", 50000, None, None, "LISTEN", 4711, "socklab"),
    SocketRow(
        "tcp", "ipv4", "127.0.0.1", 50000, "127.0.0.1", 51188, "ESTABLISHED", 4711, "socklab"
    ),
    SocketRow("tcp", "ipv4", "127.0.0.1", 51188, "127.0.0.1", 50000, "TIME_WAIT", None, None),
    SocketRow("tcp", "ipv6", "fe80::1:2:3:4", 22, "fe80::5:6:7:8", 60000, "ESTABLISHED", 1, "sshd"),
    SocketRow("udp", "ipv6", "::", 5353, None, None, None, 812345, "gnome-keyring-daemon"),
    SocketRow("udp", "ipv4", "10.0.0.1", 53, "10.0.0.2", 53, None, 9, "[weird] name"),
]


def rich_rendering(rows: list[SocketRow], width: int = 200) -> str:
    console = Console(file=io.StringIO(), width=width, no_color=True, highlight=False)
    console.print(_socket_table([WatchedRow(row, RowStatus.OPEN, 0.0) for row in rows]))
    return console.file.getvalue()  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize("count", [0, 1, len(ROWS)])
@pytest.mark.parametrize("terminal", [False, True], ids=["pipe", "terminal"])
def test_plain_table_is_what_rich_prints(count: int, terminal: bool) -> None:
    rows = ROWS[:count]
    env, out, _err = environment()
    env.stdout_isatty = terminal  # a StringIO: rich prints no colour codes either way
    print_socket_table(env, rows)
    assert out.getvalue() == rich_rendering(rows, width=200 if not terminal else 80)


def test_rich_renders_what_the_plain_table_cannot() -> None:
    headers = ["a", "b"]
    assert plain_table_lines(headers, [["x", "y"]], 80) == ["a  b", "x  y"]
    assert plain_table_lines(headers, [["x" * 40, "y" * 38]], 80) == [
        "a".ljust(40) + "  " + "b".ljust(38),
        "x" * 40 + "  " + "y" * 38,
    ]
    assert plain_table_lines(headers, [["x" * 40, "y" * 39]], 80) is None  # too wide
    assert plain_table_lines(headers, [["x", "名前"]], 80) is None  # two columns a character
    assert plain_table_lines(headers, [["x", "a\x1b[2Jb"]], 80) is None  # a control character
    rows = [dataclasses.replace(ROWS[0], process="prozeß"), ROWS[1]]
    env, out, _err = environment()
    print_socket_table(env, rows)
    assert out.getvalue() == rich_rendering(rows) and "4711 (prozeß)" in out.getvalue()


def time_wait(local_port: int, remote_port: int, local: str = "127.0.0.1") -> SocketRow:
    return SocketRow(
        "tcp", "ipv4", local, local_port, "127.0.0.1", remote_port, "TIME_WAIT", None, None
    )


def test_explain_groups_time_wait_and_explains_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = (
        ROWS[0],
        ROWS[1],
        *(time_wait(50000, port) for port in (41000, 41001, 41002)),
        time_wait(50000, 41003, local="127.0.0.2"),
        time_wait(41004, 50000),
        time_wait(41005, 50000),
        time_wait(7000, 41006),
    )
    monkeypatch.setattr(
        "socklab.cli.ports.read_socket_table", lambda selection=None: SocketTable(rows)
    )
    env, out, _err = environment()
    assert main(["ports", "--explain"], env) == ExitStatus.OK
    text = out.getvalue()
    assert "TCP port 50000: 1 listening, 1 connected, 4 in TIME_WAIT\n" in text
    assert re.search(r"^  TIME_WAIT +127\.0\.0\.1:50000 ⇄ 3 closed connections +-$", text, re.M)
    assert (
        re.search(r"^  TIME_WAIT +127\.0\.0\.2:50000 ⇄ 127\.0\.0\.1:41003 +-$", text, re.M) is None
    )
    assert "127.0.0.2:50000 ⇄ 1 closed connection " in text
    assert "ESTABLISHED  127.0.0.1:50000 ⇄ 127.0.0.1:51188" in text
    # Ports with nothing but TIME_WAIT are one line, not a lesson each.
    assert "TIME_WAIT only: 3 sockets on 3 more ports\n" in text
    assert "TCP port 41004" not in text and "TCP port 7000" not in text
    assert text.count("TIME_WAIT: the side that closed a TCP connection first") == 1


def test_explain_without_time_wait_says_nothing_of_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "socklab.cli.ports.read_socket_table", lambda selection=None: SocketTable(tuple(ROWS[:2]))
    )
    env, out, _err = environment()
    assert main(["ports", "--explain"], env) == ExitStatus.OK
    assert "TCP port 50000: 1 listening, 1 connected\n" in out.getvalue()
    assert "TIME_WAIT" not in out.getvalue()


@pytest.mark.parametrize("count", [0, 2])
def test_watch_caption_is_one_line_even_with_no_sockets(count: int) -> None:
    rows = [WatchedRow(row, RowStatus.OPEN, 0.0) for row in ROWS[:count]]
    console = Console(file=io.StringIO(), width=120, no_color=True)
    console.print(watch_view(rows, 2.0, 6.0))
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert lines[-1] == "every 2.0 s · new: green · closed: red, kept 6.0 s · Ctrl+C stops"
    assert len(lines) == 2 + count
