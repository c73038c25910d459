"""`socklab ports`: the socket table (ss -tunap, netstat -anp, CurrPorts), rendered.

Parsing and presentation only: the rows, filters, --watch diff and --explain groups come from
`socklab.tools.ports`. Machine-readable output (--json, --csv) goes to stdout alone; the line
about what could not be seen goes to stderr so a pipe stays parseable.

Speed: `ss -tunap` answers in a few hundredths of a second, and so should this command, start-up
included. So modules are imported where an output needs them (rich only for the terminal and the
watch view, csv/json for their flag), and the plain table — tens of thousands of rows on a busy
machine — is laid out here, exactly as rich lays out the same table, instead of by rich (which
took about 6 s for 12,000 rows). rich still renders what only it can: colours, a table wider than
the screen, text whose width on screen is not its length.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from socklab.cli.arguments import port_number, positive_int, positive_seconds
from socklab.cli.environment import Environment
from socklab.cli.status import ExitStatus
from socklab.errors import UsageError
from socklab.i18n import _, format_count, format_number, ngettext
from socklab.protocol.endpoints import format_endpoint
from socklab.tools.ports import (
    TIME_WAIT,
    Hidden,
    HiddenReason,
    PortGroup,
    RowStatus,
    SocketChange,
    SocketFilter,
    SocketRow,
    SocketWatch,
    WatchedRow,
    group_by_local_port,
    read_socket_table,
    select_rows,
)

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table

JSON_KEYS = tuple(field.name for field in dataclasses.fields(SocketRow))
# `--json`'s format version, in every row (the output stays a list, as scripts read it): raised
# when a key changes meaning or goes away, not when one is added.
JSON_SCHEMA_VERSION = 1
DEFAULT_WATCH_S = 2.0
# Closed sockets stay visible (and new ones highlighted) this long, at least three refreshes.
MIN_RETENTION_S = 5.0
# Without a terminal (a pipe, a file) rich would wrap at 80 columns; addresses need more.
PIPE_WIDTH = 200


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = _(
        "Show the sockets of this computer: protocol, local and remote address:port, state, PID and process — like 'ss -tunap', 'netstat -anp' or CurrPorts."
    )
    parser.add_argument("--tcp", action="store_true", help=_("TCP sockets only"))
    parser.add_argument("--udp", action="store_true", help=_("UDP sockets only"))
    parser.add_argument(
        "--listening",
        action="store_true",
        help=_("listening TCP sockets and unconnected UDP sockets only"),
    )
    parser.add_argument(
        "--port", type=port_number, help=_("sockets with this local or remote port")
    )
    parser.add_argument("--pid", type=positive_int, help=_("sockets of this process ID"))
    parser.add_argument(
        "--process", metavar="NAME", help=_("sockets of processes whose name contains NAME")
    )
    parser.add_argument(
        "--watch",
        nargs="?",
        type=positive_seconds,
        const=DEFAULT_WATCH_S,
        metavar="SECONDS",
        help=_(
            "refresh every SECONDS (default {seconds}); new sockets are highlighted, closed ones stay marked for a while"
        ).format(seconds=format_number(DEFAULT_WATCH_S, decimals=None)),
    )
    parser.add_argument(
        "--log", metavar="FILE", help=_("with --watch: append every change to FILE")
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help=_("print a JSON list of sockets"))
    output.add_argument("--csv", action="store_true", help=_("print CSV with a header line"))
    output.add_argument(
        "--explain",
        action="store_true",
        help=_("group sockets by local port and explain how UDP and TCP demultiplex"),
    )
    parser.set_defaults(handler=run)


def _selection(args: argparse.Namespace) -> SocketFilter:
    protocols = frozenset(name for name in ("tcp", "udp") if getattr(args, name))
    return SocketFilter(
        protocols=protocols,
        listening_only=args.listening,
        port=args.port,
        pid=args.pid,
        process=args.process,
    )


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    if args.log is not None and args.watch is None:
        raise UsageError(_("--log records the changes seen by --watch; add --watch."))
    if args.watch is not None and (args.json or args.csv):
        raise UsageError(_("--watch shows a live table; use --json or --csv without --watch"))
    selection = _selection(args)
    if args.watch is not None:
        return _watch(args, env, selection)
    table = read_socket_table(selection)
    rows = select_rows(table.rows, selection)
    if args.json:
        import json

        # A dict per row by hand and one write: dataclasses.asdict (it deep-copies) and
        # json.dump's thousands of small writes took most of the time with 10,000 rows.
        listed = [
            {**{key: getattr(row, key) for key in JSON_KEYS}, "schema": JSON_SCHEMA_VERSION}
            for row in rows
        ]
        env.stdout.write(json.dumps(listed, indent=2))
        env.say()
    elif args.csv:
        import csv

        writer = csv.writer(env.stdout, lineterminator="\n")
        writer.writerow(JSON_KEYS)
        for row in rows:
            writer.writerow(["" if value is None else value for value in dataclasses.astuple(row)])
        env.stdout.flush()
    elif args.explain:
        _print_explanation(env, group_by_local_port(rows))
    else:
        print_socket_table(env, rows)
        env.say(format_count("{count} socket", "{count} sockets", len(rows)))
    if table.hidden is not None:
        env.warn(describe_hidden(table.hidden))
    return ExitStatus.OK


def _console(env: Environment) -> Console:
    from rich.console import Console

    if env.stdout_isatty:
        return Console(file=env.stdout)
    return Console(file=env.stdout, width=PIPE_WIDTH, no_color=True, highlight=False)


def describe_hidden(hidden: Hidden) -> str:
    if hidden.reason is HiddenReason.SYSTEM_TABLE_REFUSED:
        return _(
            "Only sockets of processes you may inspect are shown: macOS lists the others to administrators only. Run 'sudo socklab ports' to see all."
        )
    return ngettext(
        "{count} socket is shown without PID and process: it belongs to another user's process, which only an administrator may inspect. Run 'sudo socklab ports' to see it.",
        "{count} sockets are shown without PID and process: they belong to other users' processes, which only an administrator may inspect. Run 'sudo socklab ports' to see them.",
        hidden.count or 0,
    ).format(count=format_number(hidden.count or 0))


def format_row_endpoint(address: str | None, port: int | None) -> str:
    if address is None or port is None:
        return "*"
    return format_endpoint(address, port)


def format_owner(row: SocketRow) -> str:
    if row.pid is None:
        return "-"
    return f"{row.pid} ({row.process or '?'})"


_STATUS_STYLES = {
    RowStatus.OPEN: "",
    RowStatus.APPEARED: "bold green",
    RowStatus.CHANGED: "bold yellow",
    RowStatus.CLOSED: "red strike",
}


def _status_label(status: RowStatus) -> str:
    return {
        RowStatus.OPEN: "",
        RowStatus.APPEARED: _("new"),
        RowStatus.CHANGED: _("changed"),
        RowStatus.CLOSED: _("closed"),
    }[status]


def _headers() -> list[str]:
    return [_("Proto"), _("Local address"), _("Remote address"), _("State"), _("PID (process)")]


def _cells(row: SocketRow) -> list[str]:
    return [
        f"{row.proto}{'6' if row.family == 'ipv6' else ''}",
        format_row_endpoint(row.local_address, row.local_port),
        format_row_endpoint(row.remote_address, row.remote_port),
        row.state or ("UNCONN" if row.remote_port is None else "CONNECTED"),
        format_owner(row),
    ]


def _socket_table(rows: list[WatchedRow], *, show_status: bool = False) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, header_style="bold")
    if show_status:
        table.add_column("")
    proto, local, remote, state, owner = _headers()
    table.add_column(proto)
    table.add_column(local, no_wrap=True)
    table.add_column(remote, no_wrap=True)
    table.add_column(state)
    table.add_column(owner, no_wrap=True)
    for watched in rows:
        cells = _cells(watched.row)
        if show_status:
            cells.insert(0, _status_label(watched.status))
        # Text, not markup: '[fe80::1]:22' or a process named '[x]' are shown as they are.
        table.add_row(*map(Text, cells), style=_STATUS_STYLES[watched.status] or None)
    return table


def plain_table_lines(
    headers: Sequence[str], rows: Sequence[Sequence[str]], width: int
) -> list[str] | None:
    """The lines rich prints for `Table(box=None, pad_edge=False)` of these cells, or None.

    That layout is simple: each column as wide as its widest cell, cells left-aligned, two spaces
    between columns, none at the edges. It holds while the table fits in `width` (else rich
    shrinks columns) and every cell is printable ASCII (one column per character, nothing for
    rich to strip); otherwise None, and the caller lets rich do it.
    """
    table = [headers, *rows]
    widths = [max(map(len, column)) for column in zip(*table, strict=True)]
    if sum(widths) + 2 * (len(widths) - 1) > width:
        return None
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)) for cells in table
    ]
    if not all(line.isascii() and line.isprintable() for line in lines):
        return None
    return lines


def print_socket_table(env: Environment, rows: Sequence[SocketRow]) -> None:
    """The table, as rich would print it; fast for the large tables of a busy machine."""
    cells = [_cells(row) for row in rows]
    if env.stdout_isatty:
        console = _console(env)
        lines = plain_table_lines(_headers(), cells, console.width)
        if lines is None:
            console.print(_socket_table([WatchedRow(row, RowStatus.OPEN, 0.0) for row in rows]))
            return
        from rich.text import Text

        console.print(Text(lines[0], style="bold"))  # the header: bold, as rich's header_style
        body = lines[1:]
    else:
        lines = plain_table_lines(_headers(), cells, PIPE_WIDTH)
        if lines is None:
            console = _console(env)
            console.print(_socket_table([WatchedRow(row, RowStatus.OPEN, 0.0) for row in rows]))
            return
        body = lines
    env.stdout.write("".join(line + "\n" for line in body))
    env.stdout.flush()


def _print_explanation(env: Environment, groups: tuple[PortGroup, ...]) -> None:
    if not groups:
        env.say(_("No sockets match."))
        return
    # A port where nothing but TIME_WAIT is left (usually a client's ephemeral port, closed)
    # teaches nothing of its own: on a busy machine there are thousands. One line counts them.
    waiting_only = [group for group in groups if group.is_waiting_only]
    for group in groups:
        if not group.is_waiting_only:
            _explain_group(env, group)
            env.say()
    if waiting_only:
        sockets = sum(len(group.sockets) for group in waiting_only)
        env.say(
            ngettext(
                "TIME_WAIT only: {sockets} on {ports} more port",
                "TIME_WAIT only: {sockets} on {ports} more ports",
                len(waiting_only),
            ).format(
                sockets=format_count("{count} socket", "{count} sockets", sockets),
                ports=format_number(len(waiting_only)),
            )
        )
        env.say()
    if any(group.waiting for group in groups):
        env.say(
            "→ "
            + _(
                "TIME_WAIT: the side that closed a TCP connection first keeps its 4-tuple for a while (60 s on Linux, 2 × MSL in RFC 9293), so that late segments of the old connection cannot be taken for a new one. The kernel holds these sockets, no process (no PID); they go away by themselves. Meanwhile a new server can listen on the port only if it sets SO_REUSEADDR and so did the program that closed them (socklab's servers do)."
            )
        )


def _explain_group(env: Environment, group: PortGroup) -> None:
    listeners, connections, waiting = group.listeners, group.live_connections, group.waiting
    if group.proto == "udp":
        env.say(
            ngettext(
                "UDP port {port}: {count} socket",
                "UDP port {port}: {count} sockets",
                len(group.sockets),
            ).format(port=group.local_port, count=format_number(len(group.sockets)))
        )
    elif waiting:
        env.say(
            _(
                "TCP port {port}: {listening} listening, {connections} connected, {waiting} in TIME_WAIT"
            ).format(
                port=group.local_port,
                listening=format_number(len(listeners)),
                connections=format_number(len(connections)),
                waiting=format_number(len(waiting)),
            )
        )
    else:
        env.say(
            _("TCP port {port}: {listening} listening, {connections} connected").format(
                port=group.local_port,
                listening=format_number(len(listeners)),
                connections=format_number(len(connections)),
            )
        )
    for row in group.sockets:
        if row.state == TIME_WAIT and len(waiting) > 1:
            continue  # summed up below, one line per local address
        _explain_row(env, row)
    if len(waiting) > 1:
        by_address: dict[str, int] = {}
        for row in waiting:
            by_address[row.local_address] = by_address.get(row.local_address, 0) + 1
        for address, count in by_address.items():
            local = format_row_endpoint(address, group.local_port)
            closed = format_count("{count} closed connection", "{count} closed connections", count)
            env.say(f"  {TIME_WAIT:<12} {local + ' ⇄ ' + closed:<50} -")
    port = group.local_port
    if group.proto == "udp":
        env.say(
            "  → "
            + _(
                "UDP demultiplexes on the destination port alone: every datagram to port {port} reaches this socket, whichever address and port sent it."
            ).format(port=port)
        )
    elif listeners and connections:
        env.say(
            "  → "
            + _(
                "TCP demultiplexes on the 4-tuple (source IP, source port, destination IP, destination port): each connection has its own socket on port {port}; only new connections (SYN) reach the listening socket."
            ).format(port=port)
        )
    elif listeners:
        env.say(
            "  → "
            + _(
                "A listening socket: a SYN to port {port} starts a new connection, which gets a socket of its own."
            ).format(port=port)
        )
    else:
        env.say(
            "  → "
            + _(
                "Connected sockets only: segments reach each one by its 4-tuple (this is usually a client's ephemeral port)."
            )
        )


def _explain_row(env: Environment, row: SocketRow) -> None:
    state = row.state or ("UNCONN" if row.remote_port is None else "CONNECTED")
    local = format_row_endpoint(row.local_address, row.local_port)
    remote = format_row_endpoint(row.remote_address, row.remote_port)
    link = f"{local} ⇄ {remote}" if row.remote_port is not None else local
    env.say(f"  {state:<12} {link:<50} {format_owner(row)}")


# --- --watch -------------------------------------------------------------------------------------


def _describe_change(change: SocketChange) -> str:
    from datetime import datetime

    row = change.row
    stamp = datetime.fromtimestamp(change.time).isoformat(timespec="seconds")
    what = {
        RowStatus.APPEARED: _("appeared"),
        RowStatus.CHANGED: _("changed"),
        RowStatus.CLOSED: _("closed"),
        RowStatus.OPEN: "",
    }[change.status]
    state = row.state or "-"
    if change.previous is not None and change.previous.state != row.state:
        state = f"{change.previous.state or '-'} → {state}"
    return (
        f"{stamp} {what:<8} {row.proto:<3} {format_row_endpoint(row.local_address, row.local_port)}"
        f" {format_row_endpoint(row.remote_address, row.remote_port)} {state} {format_owner(row)}"
    )


def watch_view(rows: Sequence[WatchedRow], interval_s: float, kept_s: float) -> RenderableType:
    """The --watch screen: the marked table and, below it, what the colours mean."""
    from rich.console import Group
    from rich.text import Text

    caption = _(
        "every {seconds} s · new: green · closed: red, kept {kept} s · Ctrl+C stops"
    ).format(
        seconds=format_number(interval_s, decimals=None),
        kept=format_number(kept_s, decimals=None),
    )
    # Below the table, not as its caption: rich wraps a caption to the table's width, and a
    # table with no rows is narrower than the caption.
    return Group(_socket_table(list(rows), show_status=True), Text(caption, style="table.caption"))


def _watch(args: argparse.Namespace, env: Environment, selection: SocketFilter) -> ExitStatus:
    interval = float(args.watch)
    watch = SocketWatch(retention_s=max(MIN_RETENTION_S, 3 * interval))
    log: TextIO | None = None

    def log_failure(exc: OSError) -> UsageError:
        return UsageError(
            _("cannot write the log file {path}: {reason}").format(
                path=args.log, reason=exc.strerror or exc
            )
        )

    if args.log is not None:
        try:
            log = open(args.log, "a", encoding="utf-8")  # noqa: SIM115 (closed in finally)
        except OSError as exc:
            raise log_failure(exc) from exc
    hidden_reported = False

    def refresh() -> tuple[WatchedRow, ...]:
        nonlocal hidden_reported
        table = read_socket_table(selection)
        rows, changes = watch.update(select_rows(table.rows, selection), time.time())
        if log is not None and changes:
            try:  # a full disk, a quota: one line, not an "Internal error"
                log.writelines(_describe_change(change) + "\n" for change in changes)
                log.flush()
            except OSError as exc:
                raise log_failure(exc) from exc
        if not env.stdout_isatty:
            for change in changes:
                env.say(_describe_change(change))
        if table.hidden is not None and not hidden_reported:
            env.warn(describe_hidden(table.hidden))
            hidden_reported = True
        return rows

    def view(rows: tuple[WatchedRow, ...]) -> RenderableType:
        return watch_view(rows, interval, watch.retention_s)

    try:
        rows = refresh()
        if env.stdout_isatty:
            from rich.live import Live

            console = _console(env)
            # Live shows the top of the view and cuts the rest ("..."). Only rows that can
            # appear are laid out: rich takes seconds for a table of 10,000 rows, and a
            # refresh every second must not.
            with Live(view(rows[: console.height]), console=console, auto_refresh=False) as live:
                while True:
                    time.sleep(interval)
                    live.update(view(refresh()[: console.height]), refresh=True)
        else:
            # A pipe gets the first table, then one line per change.
            print_socket_table(env, [watched.row for watched in rows])
            env.say(_("Watching for changes; Ctrl+C stops."))
            while True:
                time.sleep(interval)
                refresh()
    except KeyboardInterrupt:
        return ExitStatus.OK
    finally:
        if log is not None:
            with contextlib.suppress(OSError):  # its last flush, on a full disk
                log.close()
