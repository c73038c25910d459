"""Running a capture: open the platform's packet source, filter, decode, write pcap, hand packets on.

Strategy: the loop reads frames in batches, writes every kept frame to the pcap file (raw, as
captured, so Wireshark sees exactly what we saw) and passes each decoded packet, with the
process it is delivered to, to the caller's `on_packet`. It stops at --count packets, after
--duration seconds, or on Ctrl+C (KeyboardInterrupt), and always closes cleanly and returns the
summary with the kernel's drop counter. Only Linux has a packet source here; other systems get
a clear UnsupportedPlatform. A `.pcapng` file gets each packet's owner as its comment.

`read_capture_file` is the same pipeline fed from a file (`-r`): frames of any supported link
type, from any pcap or pcapng writer, go through the same selection and views; a broken file
ends in one UsageError naming the file and the byte offset, after the packets before it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from socklab.errors import SocklabError, UsageError
from socklab.i18n import _, ngettext
from socklab.tools.capture.owners import owner_comment
from socklab.tools.capture.packets import (
    LINKTYPE_ETHERNET,
    SUPPORTED_LINK_TYPES,
    Packet,
    decode_frame,
)
from socklab.tools.capture.pcap import DEFAULT_SNAPLEN, PcapFormatError, PcapWriter, SavedFrame
from socklab.tools.capture.savefile import CaptureWriter, make_writer, read_capture
from socklab.tools.capture.selection import PacketSelection, build_bpf_program
from socklab.tools.ports import SocketRow

if TYPE_CHECKING:
    from socklab.tools.capture.linux import Frame, PacketSocketSource

OwnerLookup = Callable[[Packet], SocketRow | None]
PacketHandler = Callable[[Packet, SocketRow | None], None]
MAX_PCAP_SECONDS = float(2**32 - 1)  # the last second a classic pcap record can hold
FILE_BATCH = 512  # frames read from a file between two on_batch() calls (the CLI's flush)
POLL_S = 0.2  # how often the loop looks at the clock when no packet comes
SKIP_AT_RING_FRACTION = 4  # skip the display once 1/4 of the ring waits (32 MiB: ~1 s of 50k/s)


class UnsupportedPlatformError(SocklabError):
    """Packet capture is not implemented for this operating system."""

    def __init__(self, platform: str) -> None:
        super().__init__(platform)
        self.platform = platform


@dataclass(frozen=True, slots=True)
class CaptureOptions:
    interface: str = "lo"
    selection: PacketSelection = field(default_factory=PacketSelection)
    count: int | None = None
    duration_s: float | None = None
    pcap_path: Path | None = None
    snaplen: int = DEFAULT_SNAPLEN
    buffer_bytes: int | None = None
    # True for a stateless view (one line per packet): when it falls behind, packets are still
    # counted and saved, but not handed to on_packet. Stateful views (ladder, stream) need all.
    may_skip_display: bool = False


@dataclass(frozen=True, slots=True)
class CaptureReady:
    interface: str
    link_type: int
    buffer_bytes: int
    kernel_filter: bool


@dataclass(frozen=True, slots=True)
class FileReady:
    path: Path
    file_format: str  # "pcap" | "pcapng"


@dataclass(frozen=True, slots=True)
class CaptureSummary:
    packets_captured: int  # packets kept (the kernel filter and the selection agreed)
    packets_shown: int  # decoded TCP/UDP packets handed to on_packet
    display_skipped: int  # captured (and saved) but not handed on: the display fell behind
    frames_seen: int  # frames read from the kernel (after its filter)
    packets_written: int  # pcap records
    kernel_received: int  # PACKET_STATISTICS tp_packets
    kernel_dropped: int  # PACKET_STATISTICS tp_drops: the buffer was full
    elapsed_s: float
    interrupted: bool
    # Read from a file (-r): frames whose link type socklab cannot decode, and those types.
    unsupported_frames: int = 0
    unsupported_link_types: tuple[int, ...] = ()


def _no_owner(_packet: Packet) -> SocketRow | None:
    return None


def run_capture(
    options: CaptureOptions,
    on_ready: Callable[[CaptureReady], None],
    on_packet: PacketHandler,
    on_batch: Callable[[], None] = lambda: None,
    on_skipped: Callable[[int], None] = lambda _count: None,
    display_lagging: Callable[[], bool] = lambda: False,
    owner_of: OwnerLookup = _no_owner,
    should_stop: Callable[[], bool] = lambda: False,
    on_frames: Callable[[Sequence[Frame]], None] = lambda _frames: None,
) -> CaptureSummary:
    """Capture until the count, the duration or Ctrl+C; `on_packet(packet, owner)` per match.

    `owner_of(packet)` names the local socket the packet is delivered to (None: unknown); it is
    handed to on_packet and, in a .pcapng file, written as the packet's comment.
    `on_batch()` runs after each batch of frames (the CLI flushes its output there);
    `on_skipped(count)` after a run of packets the display skipped (see may_skip_display);
    `display_lagging()` says the output is still busy with earlier lines (a slow terminal):
    then the display skips too, so a stalled terminal never stalls reading the ring.
    `should_stop()` is asked before each batch (at least every POLL_S): a capture running in a
    thread (the live view's) ends when it says so, as one in the main thread ends on Ctrl+C.
    `on_frames(frames)` gets every kept frame of a batch, as the file does (shown or skipped):
    the live view keeps the newest in a ring for its export.
    """
    if not sys.platform.startswith("linux"):
        raise UnsupportedPlatformError(sys.platform)
    from socklab.tools.capture.linux import DEFAULT_BUFFER_BYTES, PacketSocketSource

    pcap_file: BinaryIO | None = None
    source = PacketSocketSource(
        options.interface,
        snaplen=options.snaplen,
        buffer_bytes=options.buffer_bytes or DEFAULT_BUFFER_BYTES,
    )
    try:
        program = build_bpf_program(source.link_type, options.selection, options.snaplen)
        if program is not None:
            source.set_kernel_filter(program)
        writer = None
        if options.pcap_path is not None:
            pcap_file = _open_pcap(options.pcap_path)
            writer = make_writer(
                pcap_file, options.pcap_path, source.link_type, options.snaplen, options.interface
            )
        on_ready(
            CaptureReady(
                options.interface, source.link_type, source.buffer_bytes, program is not None
            )
        )
        hooks = _Hooks(
            on_packet, on_batch, on_skipped, display_lagging, owner_of, should_stop, on_frames
        )
        return _loop(options, source, writer, hooks, prefiltered=program is not None)
    finally:
        source.close()
        if pcap_file is not None:
            pcap_file.close()


@dataclass(frozen=True, slots=True)
class _Hooks:
    on_packet: PacketHandler
    on_batch: Callable[[], None]
    on_skipped: Callable[[int], None]
    display_lagging: Callable[[], bool]
    owner_of: OwnerLookup
    should_stop: Callable[[], bool]
    on_frames: Callable[[Sequence[Frame]], None]


def _open_pcap(path: Path) -> BinaryIO:
    try:
        return path.open("wb")
    except OSError as exc:
        raise UsageError(
            _("cannot write the capture file {path}: {reason}").format(
                path=path, reason=exc.strerror or exc
            )
        ) from exc


def _loop(
    options: CaptureOptions,
    source: PacketSocketSource,
    writer: CaptureWriter | None,
    hooks: _Hooks,
    *,
    prefiltered: bool,
) -> CaptureSummary:
    started = time.monotonic()
    deadline = started + options.duration_s if options.duration_s is not None else None
    shown = captured = frames_seen = skipped = skipped_run = 0
    interrupted = False
    link_type = source.link_type
    matches = options.selection.matches
    on_packet, owner_of = hooks.on_packet, hooks.owner_of
    # Comments only where the file keeps them: classic pcap has no place for them.
    comments: list[str | None] | None = None if isinstance(writer, PcapWriter | None) else []
    skipping = False
    try:
        while (options.count is None or captured < options.count) and not hooks.should_stop():
            timeout = POLL_S
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
                if timeout <= 0:
                    break
            frames = source.receive_batch(timeout)
            frames_seen += len(frames)
            if options.may_skip_display and prefiltered:
                skipping = (
                    display_should_skip(skipping, *source.blocks_waiting())
                    or hooks.display_lagging()
                )
            if skipping:
                # The kernel filter already chose these frames: count and save them unread.
                if options.count is not None:
                    frames = frames[: options.count - captured]
                if writer is not None:
                    writer.write_many(frames)
                    writer.flush()
                hooks.on_frames(frames)
                captured += len(frames)
                skipped += len(frames)
                skipped_run += len(frames)
                continue
            if skipped_run:
                hooks.on_skipped(skipped_run)
                skipped_run = 0
            kept: list[Frame] = []
            if comments is not None:
                comments.clear()
            for frame in frames:
                packet = decode_frame(link_type, frame.data, frame.time)
                if packet is None or not matches(packet):
                    if prefiltered:
                        kept.append(frame)  # the kernel kept it, as tcpdump would save it
                        captured += 1
                        if comments is not None:
                            comments.append(None)
                    continue
                kept.append(frame)
                captured += 1
                shown += 1
                owner = owner_of(packet)
                if comments is not None:
                    comments.append(owner_comment(owner))
                on_packet(packet, owner)
                if options.count is not None and captured >= options.count:
                    break
            if writer is not None:
                writer.write_many(kept, comments)
                writer.flush()
            hooks.on_frames(kept)
            hooks.on_batch()
    except KeyboardInterrupt:
        interrupted = True
    if skipped_run:
        hooks.on_skipped(skipped_run)
    if writer is not None:
        writer.flush()
    received, dropped = source.statistics()
    return CaptureSummary(
        packets_captured=captured,
        packets_shown=shown,
        display_skipped=skipped,
        frames_seen=frames_seen,
        packets_written=writer.packets_written if writer is not None else 0,
        kernel_received=received,
        kernel_dropped=dropped,
        elapsed_s=time.monotonic() - started,
        interrupted=interrupted,
    )


def display_should_skip(skipping: bool, blocks_waiting: int, ring_blocks: int) -> bool:
    """Whether to count and save the next frames without showing them (pure, with hysteresis).

    Start skipping once a quarter of the ring is full and waiting, stop once at most one block
    waits (we caught up): the display lags by seconds at most and never fills the ring.
    """
    if ring_blocks == 0:
        return False  # no ring (recvmsg fallback): no measure of the backlog, show everything
    if skipping:
        return blocks_waiting > 1
    return blocks_waiting >= max(2, ring_blocks // SKIP_AT_RING_FRACTION)


def read_capture_file(
    options: CaptureOptions,
    path: Path,
    on_ready: Callable[[FileReady], None],
    on_packet: Callable[[Packet, str | None], None],
    on_batch: Callable[[], None] = lambda: None,
) -> CaptureSummary:
    """Every frame of a pcap or pcapng file through the live capture's selection and views.

    Frames of a link type socklab cannot decode are counted and skipped. With `-w` the matching
    packets are written out as read (a pcapng comment travels along). `on_packet(packet,
    comment)` gets the packet's pcapng comment (text from the file: escape it), not an owner:
    the sockets of this machine now say nothing about a file's packets.

    `path` "-" reads standard input, packet by packet as it comes (`RawCap.exe 127.0.0.1 - |
    socklab capture -r -`: a live view on Windows, from RawCap's capture).
    """
    from_pipe = str(path) == "-"
    if options.pcap_path is not None and not from_pipe and _same_file(path, options.pcap_path):
        raise UsageError(
            _("-r and -w name the same file {path}; writing would destroy what is read").format(
                path=path
            )
        )
    started = time.monotonic()
    try:
        stream = sys.stdin.buffer if from_pipe else path.open("rb")
    except OSError as exc:
        raise UsageError(
            _("cannot read the capture file {path}: {reason}").format(
                path=path, reason=exc.strerror or exc
            )
        ) from exc
    counts = _FileCounts()
    interrupted = False
    with stream:
        output = _FileOutput(options)  # opened now: an unwritable -w fails before any output
        try:
            file_format, frames = read_capture(stream)
            on_ready(FileReady(path, file_format))
            batch = 1 if from_pipe else FILE_BATCH
            _replay(options, frames, on_packet, on_batch, output, counts, batch)
        except PcapFormatError as error:
            on_batch()
            raise UsageError(_describe_format_error(path, error, counts.frames)) from error
        except KeyboardInterrupt:
            interrupted = True
        finally:
            output.close()
    return CaptureSummary(
        packets_captured=counts.kept,
        packets_shown=counts.kept,
        display_skipped=0,
        frames_seen=counts.frames,
        packets_written=output.packets_written,
        kernel_received=0,
        kernel_dropped=0,
        elapsed_s=time.monotonic() - started,
        interrupted=interrupted,
        unsupported_frames=counts.unsupported,
        unsupported_link_types=tuple(sorted(counts.unsupported_types)),
    )


def _describe_format_error(path: Path, error: PcapFormatError, frames_read: int) -> str:
    if frames_read:
        return ngettext(
            "cannot read {path} at byte {offset}: {reason}. The {count} packet before it was read; the file is damaged or was cut short (still being written?).",
            "cannot read {path} at byte {offset}: {reason}. The {count} packets before it were read; the file is damaged or was cut short (still being written?).",
            frames_read,
        ).format(path=path, offset=error.offset, reason=error.reason, count=frames_read)
    return _(
        "cannot read {path} at byte {offset}: {reason}. socklab reads pcap and pcapng files, as tcpdump -w, Wireshark, tshark and RawCap write them."
    ).format(path=path, offset=error.offset, reason=error.reason)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and a.samefile(b))
    except OSError:
        return False


@dataclass(slots=True)
class _FileCounts:
    frames: int = 0
    kept: int = 0
    unsupported: int = 0
    unsupported_types: set[int] = field(default_factory=set)


class _FileOutput:
    """The -w file of a -r run: opened at once, its header written at the first packet, whose
    link type it takes."""

    def __init__(self, options: CaptureOptions) -> None:
        self._options = options
        path = options.pcap_path
        self._stream = _open_pcap(path) if path is not None else None
        self._writer: CaptureWriter | None = None

    @property
    def packets_written(self) -> int:
        return self._writer.packets_written if self._writer is not None else 0

    def write(
        self, time: float, data: bytes, original: int, link_type: int, comment: str | None
    ) -> None:
        path, stream = self._options.pcap_path, self._stream
        if path is None or stream is None:
            return
        if self._writer is None:
            self._writer = make_writer(stream, path, link_type, self._options.snaplen)
        # A file may carry any 64-bit stamp; classic pcap stores 32-bit seconds from 1970.
        time = min(max(time, 0.0), MAX_PCAP_SECONDS)
        if isinstance(self._writer, PcapWriter):
            if link_type != self._writer.link_type:
                raise UsageError(
                    _(
                        "{path}: a classic pcap file holds one link type, and the packets read have several ({first} and {other}); write a .pcapng file instead"
                    ).format(path=path, first=self._writer.link_type, other=link_type)
                )
            self._writer.write(time, data, original)
        else:
            self._writer.write(time, data, original, comment, link_type)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        path, stream = self._options.pcap_path, self._stream
        if path is None or stream is None:
            return
        if self._writer is None:
            # Nothing matched: still leave a valid, empty file, as a live capture does.
            self._writer = make_writer(stream, path, LINKTYPE_ETHERNET, self._options.snaplen)
        stream.close()


def _replay(
    options: CaptureOptions,
    frames: Iterator[SavedFrame],
    on_packet: Callable[[Packet, str | None], None],
    on_batch: Callable[[], None],
    output: _FileOutput,
    counts: _FileCounts,
    batch: int,
) -> None:
    matches = options.selection.matches
    for frame in frames:
        counts.frames += 1
        if frame.link_type not in SUPPORTED_LINK_TYPES:
            counts.unsupported += 1
            counts.unsupported_types.add(frame.link_type)
            continue
        packet = decode_frame(frame.link_type, frame.data, frame.time)
        if packet is not None and matches(packet):
            counts.kept += 1
            output.write(
                frame.time, frame.data, frame.original_length, frame.link_type, frame.comment
            )
            on_packet(packet, frame.comment)
            if options.count is not None and counts.kept >= options.count:
                break
        if counts.frames % batch == 0:
            output.flush()
            on_batch()
    output.flush()
    on_batch()
