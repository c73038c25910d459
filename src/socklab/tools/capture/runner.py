"""Running a capture: open the platform's packet source, filter, decode, write pcap, hand packets on.

Strategy: the loop reads frames in batches, writes every kept frame to the pcap file (raw, as
captured, so Wireshark sees exactly what we saw) and passes each decoded packet to the caller's
`on_packet`. It stops at --count packets, after --duration seconds, or on Ctrl+C
(KeyboardInterrupt), and always closes cleanly and returns the summary with the kernel's drop
counter. Only Linux has a packet source here; other systems get a clear UnsupportedPlatform.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from socklab.errors import SocklabError, UsageError
from socklab.i18n import _
from socklab.tools.capture.packets import Packet, decode_frame
from socklab.tools.capture.pcap import DEFAULT_SNAPLEN, PcapWriter
from socklab.tools.capture.selection import PacketSelection, build_bpf_program

if TYPE_CHECKING:
    from socklab.tools.capture.linux import Frame, PacketSocketSource

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


def run_capture(
    options: CaptureOptions,
    on_ready: Callable[[CaptureReady], None],
    on_packet: Callable[[Packet, bytes], None],
    on_batch: Callable[[], None] = lambda: None,
    on_skipped: Callable[[int], None] = lambda _count: None,
    display_lagging: Callable[[], bool] = lambda: False,
    should_stop: Callable[[], bool] = lambda: False,
) -> CaptureSummary:
    """Capture until the count, the duration or Ctrl+C; `on_packet(packet, frame)` per match.

    `on_batch()` runs after each batch of frames (the CLI flushes its output there);
    `on_skipped(count)` after a run of packets the display skipped (see may_skip_display);
    `display_lagging()` says the output is still busy with earlier lines (a slow terminal):
    then the display skips too, so a stalled terminal never stalls reading the ring.
    `should_stop()` is asked before each batch (at least every POLL_S): a capture running in a
    thread (the live view's) ends when it says so, as one in the main thread ends on Ctrl+C.
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
        if options.pcap_path is not None:
            pcap_file = _open_pcap(options.pcap_path)
        writer = PcapWriter(pcap_file, source.link_type, options.snaplen) if pcap_file else None
        on_ready(
            CaptureReady(
                options.interface, source.link_type, source.buffer_bytes, program is not None
            )
        )
        hooks = _Hooks(on_packet, on_batch, on_skipped, display_lagging, should_stop)
        return _loop(options, source, writer, hooks, prefiltered=program is not None)
    finally:
        source.close()
        if pcap_file is not None:
            pcap_file.close()


@dataclass(frozen=True, slots=True)
class _Hooks:
    on_packet: Callable[[Packet, bytes], None]
    on_batch: Callable[[], None]
    on_skipped: Callable[[int], None]
    display_lagging: Callable[[], bool]
    should_stop: Callable[[], bool]


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
    writer: PcapWriter | None,
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
    on_packet = hooks.on_packet
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
                captured += len(frames)
                skipped += len(frames)
                skipped_run += len(frames)
                continue
            if skipped_run:
                hooks.on_skipped(skipped_run)
                skipped_run = 0
            kept: list[Frame] = []
            for frame in frames:
                packet = decode_frame(link_type, frame.data, frame.time)
                if packet is None or not matches(packet):
                    if prefiltered:
                        kept.append(frame)  # the kernel kept it, as tcpdump would save it
                        captured += 1
                    continue
                kept.append(frame)
                captured += 1
                shown += 1
                on_packet(packet, frame.data)
                if options.count is not None and captured >= options.count:
                    break
            if writer is not None:
                writer.write_many(kept)
                writer.flush()
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
