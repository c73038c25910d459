"""`socklab capture`: packets on the wire (tcpdump, RawCap), a ladder of the handshake, streams.

`-r FILE` feeds the same views from a pcap or pcapng file instead of the wire: any writer's
(tcpdump, tshark, Wireshark, RawCap, socklab), so students on Windows and macOS, where socklab
cannot capture, still get the ladder and the streams of their own captures.

Parsing and presentation only: capturing, decoding, pcap, reassembly and the ladder's message
analysis live in `socklab.tools.capture`. Lines are collected per batch the kernel hands over
and written, with one write and one flush, by an output thread, so a slow terminal never
makes the capture loop wait.

The display is never the reason packets are lost. A terminal cannot show 50,000 lines a
second, and a tcpdump user who reads lines while the capture runs expects two things: that
the count and the pcap file are complete, and that the screen says so when it shows less.
So the line view may fall behind: the capture keeps reading the kernel's ring, counting and
writing every packet to the pcap, and when a quarter of the ring waits unread it stops
rendering until it has caught up, then prints one line "display skipped N packets" (all in
the pcap with -w). tcpdump instead lets the kernel drop packets when its printing is slow;
those are lost for the file too. The ladder and stream views rebuild connection state from
every packet, so they never skip (they are meant for small teaching captures).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import queue
import shlex
import sys
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from socklab.cli.arguments import port_number, positive_int, positive_seconds
from socklab.cli.environment import Environment
from socklab.cli.pictures import PictureFile
from socklab.cli.status import ExitStatus
from socklab.errors import PermissionDeniedError, UsageError
from socklab.i18n import _, format_count, format_number, ngettext
from socklab.protocol.endpoints import format_endpoint
from socklab.protocol.escaping import (
    escape_for_terminal,
    hexdump_lines,
    incomplete_character_bytes,
)
from socklab.tools.capture.ladder import LadderBuilder, LadderStep
from socklab.tools.capture.ladder_labels import (
    describe_arrow,
    describe_connection,
    describe_step_messages,
)
from socklab.tools.capture.ladder_svg import MAX_DRAWN_STEPS, render_ladder_svg
from socklab.tools.capture.owners import SocketOwners
from socklab.tools.capture.packets import Packet, TcpFlags, describe_flags
from socklab.tools.capture.runner import (
    CaptureOptions,
    CaptureReady,
    CaptureSummary,
    FileReady,
    UnsupportedPlatformError,
    read_capture_file,
    run_capture,
)
from socklab.tools.capture.selection import PacketSelection
from socklab.tools.capture.streams import MAX_CONNECTIONS, ConnectionTracker, SequenceNumbering
from socklab.tools.ports import SocketRow

PREVIEW_BYTES = 48
LADDER_WIDTH = 46  # characters between the two columns of the ladder
HEX_INDENT = "    "  # a hex dump under its packet line
# The first socket-table read can take seconds on a machine with many thousands of sockets;
# the capture starts anyway and annotates once the table is in.
OWNERS_READY_S = 10.0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = _(
        "Capture TCP and UDP packets (loopback by default), one line per packet, and write them to a pcap file for Wireshark. Needs root or CAP_NET_RAW on Linux. With -r, read the packets from a pcap or pcapng file instead (any system, no privileges)."
    )
    parser.add_argument(
        "--iface",
        metavar="NAME",
        help=_("network interface (default: lo, the loopback)"),
    )
    parser.add_argument(
        "-r",
        dest="read",
        type=Path,
        metavar="FILE",
        help=_(
            "read packets from a pcap or pcapng file (tcpdump, Wireshark, tshark, RawCap) instead of capturing; - reads standard input"
        ),
    )
    parser.add_argument("--port", type=port_number, help=_("packets from or to this port only"))
    protocol = parser.add_mutually_exclusive_group()
    protocol.add_argument("--tcp", action="store_true", help=_("TCP packets only"))
    protocol.add_argument("--udp", action="store_true", help=_("UDP packets only"))
    parser.add_argument("--count", type=positive_int, help=_("stop after this many packets"))
    parser.add_argument("--duration", type=positive_seconds, help=_("stop after this many seconds"))
    parser.add_argument(
        "-w",
        dest="pcap",
        type=Path,
        metavar="FILE.pcap",
        help=_(
            "also write the packets to a file for Wireshark or tshark: pcapng with each packet's receiving process as its comment if the name ends in .pcapng, else classic pcap"
        ),
    )
    parser.add_argument(
        "--hex", action="store_true", help=_("show the payload as a hex dump as well")
    )
    parser.add_argument(
        "--absolute",
        action="store_true",
        help=_(
            "show TCP sequence and acknowledgement numbers as on the wire (tcpdump -S), not relative to each direction's first one (Wireshark's default)"
        ),
    )
    view = parser.add_mutually_exclusive_group()
    view.add_argument(
        "--ladder",
        action="store_true",
        help=_("draw each connection as a ladder, with the messages inside each segment"),
    )
    view.add_argument(
        "--follow",
        action="store_true",
        help=_("reassemble each TCP stream and print its bytes in order"),
    )
    parser.add_argument(
        "--svg",
        type=Path,
        metavar="FILE",
        help=_(
            "with --ladder: also draw the ladder as an SVG picture in FILE (for slides and documents), written when the capture ends"
        ),
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    if args.svg is not None and not args.ladder:
        raise UsageError(
            _("--svg draws the ladder: add --ladder (socklab capture --ladder --svg FILE)")
        )
    if args.follow and args.udp:
        raise UsageError(_("--follow reassembles TCP streams; it cannot be used with --udp"))
    protocols = frozenset(
        {"tcp"} if args.tcp or args.follow else {"udp"} if args.udp else {"tcp", "udp"}
    )
    if args.read is not None and (args.iface is not None or args.duration is not None):
        raise UsageError(
            _("-r reads a file: --iface and --duration are for a live capture; leave them out")
        )
    options = CaptureOptions(
        interface=args.iface or "lo",
        selection=PacketSelection(protocols, args.port),
        count=args.count,
        duration_s=args.duration,
        pcap_path=args.pcap,
        may_skip_display=not (args.ladder or args.follow),
    )
    picture = PictureFile(args.svg) if args.svg is not None else None
    try:
        return _run_view(args, env, options, picture)
    finally:
        if picture is not None:
            picture.discard()


def _run_view(
    args: argparse.Namespace,
    env: Environment,
    options: CaptureOptions,
    picture: PictureFile | None,
) -> ExitStatus:
    printer = _Printer(env, hex_dump=args.hex)
    view: _View
    if args.ladder:
        source = str(args.read) if args.read is not None else options.interface
        view = _LadderView(printer, absolute=args.absolute, picture=picture, source=source)
    elif args.follow:
        view = _FollowView(printer)
    else:
        view = _LineView(printer, absolute=args.absolute)
    if args.read is not None:
        return _run_file(args.read, options, printer, view)
    owners = SocketOwners()
    owners.start()

    def announce(ready: CaptureReady) -> None:
        # Packets queue in the kernel meanwhile; the table makes the first lines complete.
        owners.wait_ready(OWNERS_READY_S)
        printer.say(_describe_ready(ready, options))
        printer.flush()

    try:
        try:
            summary = run_capture(
                options,
                announce,
                view.show,
                printer.flush,
                lambda count: printer.say(_describe_skipped(count, options)),
                printer.lagging,
                owners.owner_of,
            )
        except PermissionDeniedError:
            env.fail(
                _(
                    "capturing packets needs root or the CAP_NET_RAW capability. Run it with sudo: sudo {command}. Give the capability only to a dedicated copy of Python, never to the system's (every script would get raw sockets): see 'socklab capture' in docs/TOOLS.md."
                ).format(command=sudo_command_line(env.arguments))
            )
            return ExitStatus.PERMISSION
        except UnsupportedPlatformError as error:
            env.fail(_describe_unsupported(error.platform))
            return ExitStatus.ERROR
        view.finish()
        printer.say(_describe_summary(summary, options))
    finally:
        owners.close()
        printer.close()
    return ExitStatus.OK


def sudo_command_line(arguments: Sequence[str]) -> str:
    """This command again, as sudo needs it: the socklab of this environment, by its path.

    sudo's secure_path does not hold the venv's bin directory, so a bare `socklab` is not found
    (or is another installation); the path is shown relative to the current directory when the
    venv lies below it (`.venv/bin/socklab`), as a student types it.
    """
    script = Path(sys.executable).parent / "socklab"
    if script.exists():
        with contextlib.suppress(ValueError):
            script = script.relative_to(Path.cwd())
        program = [str(script)]
    else:
        program = [sys.executable, "-m", "socklab"]
    # The user's own arguments, quoted for the shell; not a peer's bytes, but escaped all the same.
    return escape_for_terminal(shlex.join([*program, *arguments]))


def _run_file(path: Path, options: CaptureOptions, printer: _Printer, view: _View) -> ExitStatus:
    """-r: the packets of a capture file through the same selection and view."""

    def announce(ready: FileReady) -> None:
        printer.say(
            _("Reading {path} ({format}; {selection}).").format(
                path=ready.path, format=ready.file_format, selection=_describe_selection(options)
            )
        )
        printer.flush()

    try:
        summary = read_capture_file(
            options,
            path,
            announce,
            lambda packet, comment: view.show(packet, None, comment),
            printer.flush,
        )
        view.finish()
        printer.say(_describe_file_summary(summary, path, options))
    finally:
        printer.close()
    return ExitStatus.OK


def _describe_file_summary(summary: CaptureSummary, path: Path, options: CaptureOptions) -> str:
    line = ngettext(
        "{count} packet read from {path}", "{count} packets read from {path}", summary.frames_seen
    ).format(count=summary.frames_seen, path=path)
    line += ", " + ngettext(
        "{count} TCP/UDP packet matched", "{count} TCP/UDP packets matched", summary.packets_shown
    ).format(count=summary.packets_shown)
    if options.pcap_path is not None:
        line += "; " + _("{count} written to {path}").format(
            count=summary.packets_written, path=options.pcap_path
        )
    if summary.unsupported_frames:
        names = ", ".join(str(link_type) for link_type in summary.unsupported_link_types)
        line += ". " + ngettext(
            "{count} packet skipped: link type {types} is not one socklab decodes (Ethernet, raw IP, BSD loopback, Linux cooked)",
            "{count} packets skipped: link type {types} is not one socklab decodes (Ethernet, raw IP, BSD loopback, Linux cooked)",
            summary.unsupported_frames,
        ).format(count=summary.unsupported_frames, types=names)
    return line if line.endswith(".") else line + "."


def _describe_unsupported(platform: str) -> str:
    if platform == "darwin":
        return _(
            "packet capture works on Linux only (AF_PACKET sockets); on macOS use 'sudo tcpdump -i lo0 -w FILE.pcap port N' or Wireshark on lo0, then 'socklab capture -r FILE.pcap --ladder' shows the file here."
        )
    if platform == "win32":
        return _(
            "packet capture works on Linux only (AF_PACKET sockets); on Windows use RawCap ('RawCap.exe 127.0.0.1 FILE.pcap', as administrator) or Wireshark with Npcap's loopback adapter, then 'socklab capture -r FILE.pcap --ladder' shows the file here."
        )
    return _("packet capture works on Linux only (AF_PACKET sockets), not on {platform}.").format(
        platform=platform
    )


def _describe_selection(options: CaptureOptions) -> str:
    parts = sorted(options.selection.protocols)
    words = " ".join(parts) if len(parts) == 1 else "tcp udp"
    if options.selection.port is not None:
        words += " " + _("port {port}").format(port=options.selection.port)
    return words


def _describe_ready(ready: CaptureReady, options: CaptureOptions) -> str:
    return _(
        "Capturing on {iface} ({selection}; {buffer} MiB kernel buffer{filter}). Press Ctrl+C to stop."
    ).format(
        iface=ready.interface,
        selection=_describe_selection(options),
        buffer=ready.buffer_bytes >> 20,
        filter=", " + _("kernel filter") if ready.kernel_filter else "",
    )


def _describe_skipped(count: int, options: CaptureOptions) -> str:
    if options.pcap_path is not None:
        return ngettext(
            "… display skipped {count} packet to keep up; it is in {path}",
            "… display skipped {count} packets to keep up; all are in {path}",
            count,
        ).format(count=format_number(count), path=options.pcap_path)
    return ngettext(
        "… display skipped {count} packet to keep up (captured and counted; -w FILE.pcap keeps every packet)",
        "… display skipped {count} packets to keep up (captured and counted; -w FILE.pcap keeps every packet)",
        count,
    ).format(count=format_number(count))


def _describe_summary(summary: CaptureSummary, options: CaptureOptions) -> str:
    line = format_count(
        "{count} packet captured", "{count} packets captured", summary.packets_captured
    )
    if summary.display_skipped:
        line += " " + _("({count} not displayed)").format(
            count=format_number(summary.display_skipped)
        )
    line += "; " + _("kernel: {received} received, {dropped} dropped").format(
        received=format_number(summary.kernel_received),
        dropped=format_number(summary.kernel_dropped),
    )
    if options.pcap_path is not None:
        line += "; " + _("{count} written to {path}").format(
            count=format_number(summary.packets_written), path=options.pcap_path
        )
    if summary.kernel_dropped:
        line += ". " + _(
            "The kernel dropped packets because socklab read them too slowly: narrow the capture with --port, or write to a file with -w and print less."
        )
    return line if line.endswith(".") else line + "."


# --- printing -------------------------------------------------------------------------------------


class _Printer:
    """Collects lines; `flush` hands them, as one string, to a writer thread.

    The thread does the write() and flush() that can block for long on a terminal whose reader
    gets no CPU; the capture loop only asks `lagging()` and skips the display meanwhile, so a
    stalled terminal never stops it reading the kernel's ring. Call `close()` at the end: it
    waits until everything handed over is written.
    """

    def __init__(self, env: Environment, *, hex_dump: bool) -> None:
        self.env = env
        self.hex_dump = hex_dump
        self._lines: list[str] = []
        self.say = self._lines.append
        self._chunks: queue.Queue[str | None] = queue.Queue()
        self._error: OSError | None = None
        self._writer = threading.Thread(target=self._write_chunks, name="capture-output")
        self._writer.daemon = True
        self._writer.start()

    def _write_chunks(self) -> None:
        stream = self.env.stdout
        while (chunk := self._chunks.get()) is not None:
            try:
                if self._error is None:
                    stream.write(chunk)
                    stream.flush()
            except OSError as exc:  # a closed pipe (| head): the main thread raises it
                self._error = exc
            finally:
                self._chunks.task_done()
        self._chunks.task_done()

    def lagging(self) -> bool:
        """More than one chunk of lines is still waiting to be written."""
        return self._chunks.unfinished_tasks > 1

    def flush(self) -> None:
        if self._error is not None:
            raise self._error
        if self._lines:
            self._lines.append("")
            self._chunks.put("\n".join(self._lines))
            self._lines.clear()

    def close(self) -> None:
        """Write what is left; raise the write error, if any, once the thread has ended."""
        if self._lines:
            self._lines.append("")
            self._chunks.put("\n".join(self._lines))
            self._lines.clear()
        self._chunks.put(None)
        self._writer.join()
        if self._error is not None:
            raise self._error


def escape_bytes(data: bytes) -> str:
    """One line of payload for the line view (the project's one escaper, unquoted)."""
    return escape_for_terminal(data)


def format_preview(data: bytes, limit: int = PREVIEW_BYTES) -> str:
    """Payload as a quoted one-line string, cut at `limit` bytes with its size named."""
    return escape_for_terminal(data, max_bytes=limit, quoted=True)


def describe_owner(owner: SocketRow | None) -> str:
    if owner is None or owner.pid is None:
        return ""
    return _("delivered to PID {pid} ({process})").format(
        pid=owner.pid, process=owner.process or "?"
    )


class _Clock:
    """HH:MM:SS.ffffff in local time; the HH:MM:SS part is formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def format(self, stamp: float) -> str:
        second = math.floor(stamp)
        if second != self._second:
            self._second = second
            try:
                self._text = datetime.fromtimestamp(second).strftime("%H:%M:%S")
            except (OverflowError, OSError, ValueError):
                # A file (-r) may hold any 64-bit stamp; the time of day of year 10^12 is not one.
                self._text = "??:??:??"
        return f"{self._text}.{min(int((stamp - second) * 1_000_000), 999_999):06d}"


class _View:
    def show(self, packet: Packet, owner: SocketRow | None, comment: str | None = None) -> None:
        """One packet; `comment` is a pcapng packet comment read with -r (hostile text)."""
        raise NotImplementedError

    def finish(self) -> None:
        """Called once after the capture ended."""


class _LineView(_View):
    """tcpdump's one line per packet, plus the receiving process.

    Sequence and acknowledgement numbers are relative to each direction's ISN, as the ladder
    and Wireshark show them (so the three views can be read side by side); `absolute` shows
    them as on the wire. An ACK number of a segment without the ACK flag means nothing and is
    shown as it is (0 in a SYN).
    """

    def __init__(self, printer: _Printer, *, absolute: bool = False) -> None:
        self.printer = printer
        self.clock = _Clock()
        self.numbering = None if absolute else SequenceNumbering()

    def show(self, packet: Packet, owner: SocketRow | None, comment: str | None = None) -> None:
        parts = [
            self.clock.format(packet.time),
            packet.proto.upper(),
            f"{format_endpoint(*packet.source)} → {format_endpoint(*packet.destination)}",
        ]
        if packet.flags is not None:
            seq, ack = packet.seq, packet.ack
            if self.numbering is not None:
                seq, relative_ack = self.numbering.number(packet)
                ack = ack if relative_ack is None else relative_ack
            parts.append(f"[{describe_flags(packet.flags)}] seq={seq} ack={ack}")
        parts.append(f"len={packet.payload_length}")
        if packet.payload:
            parts.append(format_preview(packet.payload))
        delivered = describe_owner(owner)
        if delivered:
            parts.append(f"· {delivered}")
        if comment:
            parts.append("· " + _("comment {text}").format(text=format_preview(comment.encode())))
        self.printer.say(" ".join(parts))
        if self.printer.hex_dump and packet.payload:
            for line in hexdump_lines(packet.payload, indent=HEX_INDENT, bars=False):
                self.printer.say(line)


class _LadderView(_View):
    """Each connection as two columns (client ip:port, server ip:port) and arrows between."""

    def __init__(
        self,
        printer: _Printer,
        *,
        absolute: bool = False,
        picture: PictureFile | None = None,
        source: str = "",
    ) -> None:
        self.printer = printer
        self.absolute = absolute
        self.builder = LadderBuilder()
        self._start: dict[tuple[str, int], float] = {}
        self._owners_named: set[tuple[str, tuple[str, int]]] = set()
        self._picture = picture
        self._source = source
        self._drawn: list[LadderStep] = []  # the steps for the picture, at most MAX_DRAWN_STEPS
        self._not_drawn = 0

    def show(self, packet: Packet, owner: SocketRow | None, comment: str | None = None) -> None:
        step = self.builder.add(packet)
        if self._picture is not None:
            if len(self._drawn) < MAX_DRAWN_STEPS:
                self._drawn.append(step)
            else:
                self._not_drawn += 1
        key = (step.proto, step.connection)
        say = self.printer.say
        if step.opens_connection:
            self._start[key] = step.time
            say("")
            say(describe_connection(step))
            left, right = format_endpoint(*step.client), format_endpoint(*step.server)
            say(f"{'':>14}{left:<{LADDER_WIDTH // 2}}{right:>{LADDER_WIDTH // 2 + 2}}")
        elapsed = step.time - self._start.get(key, step.time)
        label = describe_arrow(step, absolute=self.absolute)
        arrow = _arrow(label, to_right=step.from_client)
        prefix = f"{step.proto}#{step.connection}"
        line = f"{prefix:<6} {elapsed:6.3f} |{arrow}|"
        notes = describe_step_messages(step)
        if notes:
            line += "  " + notes
        say(line)
        named = (step.proto, step.receiver)
        delivered = describe_owner(owner)
        if delivered and named not in self._owners_named:
            self._owners_named.add(named)
            say(f"{'':>14}{format_endpoint(*step.receiver)}: {delivered}")
        if self.printer.hex_dump and packet.payload:
            for dump_line in hexdump_lines(packet.payload, indent=" " * 16, bars=False):
                say(dump_line)

    def finish(self) -> None:
        if self._picture is None:
            return
        svg = render_ladder_svg(
            self._drawn,
            title=_("socklab capture --ladder: {source}").format(source=self._source),
            absolute=self.absolute,
            omitted=self._not_drawn,
        )
        self._picture.write(svg)
        self.printer.say(
            ngettext(
                "Ladder picture of {count} packet written to {path}.",
                "Ladder picture of {count} packets written to {path}.",
                len(self._drawn),
            ).format(count=len(self._drawn), path=self._picture.path)
        )


def _arrow(label: str, *, to_right: bool) -> str:
    body = f" {label} " if label else ""
    room = LADDER_WIDTH - len(body) - 1
    if room < 4:
        body, room = body[: LADDER_WIDTH - 6] + " ", 5
    left_dashes = 2
    if to_right:
        return "-" * left_dashes + body + "-" * (room - left_dashes) + ">"
    return "<" + "-" * left_dashes + body + "-" * (room - left_dashes)


class _FollowView(_View):
    """The bytes of each TCP stream in order, as the receiving program reads them.

    Text is shown as text: valid UTF-8 as its characters, everything else escaped by the one
    escaper. A character cut between two segments (TCP cuts anywhere) is held back, at most
    3 bytes per direction, and shown with the next bytes of its direction, or escaped when the
    direction ends (FIN, RST) or the capture does; the byte count of each segment stays exact.
    """

    def __init__(self, printer: _Printer) -> None:
        self.printer = printer
        self.tracker = ConnectionTracker()
        self._held: dict[tuple[int, tuple[str, int]], bytes] = {}

    def show(self, packet: Packet, owner: SocketRow | None, comment: str | None = None) -> None:
        segment = self.tracker.track(packet)
        connection = segment.connection
        say = self.printer.say
        if segment.is_new_connection:
            say(
                _("TCP stream {number}: {client} ⇄ {server}").format(
                    number=connection.number,
                    client=format_endpoint(*connection.client),
                    server=format_endpoint(*connection.server),
                )
            )
        if segment.delivered:
            marker = ">" if segment.from_client else "<"
            say(
                f"#{connection.number} {marker} {format_endpoint(*packet.source)} → "
                f"{format_endpoint(*packet.destination)} "
                + format_count("({count} byte)", "({count} bytes)", len(segment.delivered))
            )
            if self.printer.hex_dump:
                for line in hexdump_lines(segment.delivered, indent=HEX_INDENT, bars=False):
                    say(line)
            else:
                self._say_text((connection.number, packet.source), segment.delivered)
        if segment.fin or packet.has(TcpFlags.RST):
            self._say_held((connection.number, packet.source))
        if segment.fin:
            say(
                _("#{number} {sender} closed its direction (FIN)").format(
                    number=connection.number, sender=format_endpoint(*packet.source)
                )
            )
        if packet.has(TcpFlags.RST):
            say(
                _("#{number} reset by {sender} (RST)").format(
                    number=connection.number, sender=format_endpoint(*packet.source)
                )
            )

    def _say_text(self, direction: tuple[int, tuple[str, int]], data: bytes) -> None:
        data = self._held.pop(direction, b"") + data
        held = incomplete_character_bytes(data)
        if held and len(self._held) < 2 * MAX_CONNECTIONS:
            self._held[direction] = data[-held:]
            data = data[:-held]
        for text_line in _stream_lines(data):
            self.printer.say(f"    {text_line}")

    def _say_held(self, direction: tuple[int, tuple[str, int]]) -> None:
        """The bytes of a character that never completed, escaped."""
        held = self._held.pop(direction, b"")
        if held:
            self.printer.say(f"    {escape_bytes(held)}")

    def finish(self) -> None:
        for direction in list(self._held):
            self._say_held(direction)


def _stream_lines(data: bytes) -> list[str]:
    """Stream bytes as text lines, each newline shown as \\n so message ends stay visible."""
    lines = data.split(b"\n")
    tail = lines.pop()
    shown = [escape_bytes(line) + "\\n" for line in lines]
    if tail:
        shown.append(escape_bytes(tail))
    return shown
