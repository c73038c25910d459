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
    from socklab.tools.capture.linux import PacketSocketSource

POLL_S = 0.2  # how often the loop looks at the clock when no packet comes


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


@dataclass(frozen=True, slots=True)
class CaptureReady:
    interface: str
    link_type: int
    buffer_bytes: int
    kernel_filter: bool


@dataclass(frozen=True, slots=True)
class CaptureSummary:
    packets_shown: int  # decoded TCP/UDP packets that matched
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
) -> CaptureSummary:
    """Capture until the count, the duration or Ctrl+C; `on_packet(packet, frame)` per match.

    `on_batch()` runs after each batch of frames (the CLI flushes its output there).
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
        return _loop(options, source, writer, on_packet, on_batch)
    finally:
        source.close()
        if pcap_file is not None:
            pcap_file.close()


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
    on_packet: Callable[[Packet, bytes], None],
    on_batch: Callable[[], None],
) -> CaptureSummary:
    started = time.monotonic()
    deadline = started + options.duration_s if options.duration_s is not None else None
    shown = frames_seen = 0
    interrupted = False
    link_type = source.link_type
    matches = options.selection.matches
    try:
        while options.count is None or shown < options.count:
            timeout = POLL_S
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
                if timeout <= 0:
                    break
            for frame in source.receive_batch(timeout):
                frames_seen += 1
                packet = decode_frame(link_type, frame.data, frame.time)
                if packet is None or not matches(packet):
                    continue
                if writer is not None:
                    writer.write(frame.time, frame.data, frame.original_length)
                shown += 1
                on_packet(packet, frame.data)
                if options.count is not None and shown >= options.count:
                    break
            if writer is not None:
                writer.flush()
            on_batch()
    except KeyboardInterrupt:
        interrupted = True
    received, dropped = source.statistics()
    return CaptureSummary(
        packets_shown=shown,
        frames_seen=frames_seen,
        packets_written=writer.packets_written if writer is not None else 0,
        kernel_received=received,
        kernel_dropped=dropped,
        elapsed_s=time.monotonic() - started,
        interrupted=interrupted,
    )
