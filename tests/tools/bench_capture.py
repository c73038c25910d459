"""Capture speed yardstick (not a test): CPU cost per packet of decoding and of the line view.

Usage: .venv/bin/python -m tests.tools.bench_capture FILE.pcap   (e.g. one written by
`socklab capture -w` during a loadgen run). Prints microseconds per packet for socklab's
decoder, for dpkt's where dpkt is installed (the library alternative considered), and for the
whole per-packet path of `socklab capture` (decode, filter, owner lookup, line, write).
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

from socklab.cli.capture import _LineView, _Printer
from socklab.cli.environment import Environment
from socklab.tools.capture.owners import SocketOwners
from socklab.tools.capture.packets import decode_frame
from socklab.tools.capture.pcap import parse_pcap
from socklab.tools.capture.selection import PacketSelection
from socklab.tools.ports import SocketTable

MAX_FRAMES = 50_000


def best_of(rounds: int, frames: int, run: Callable[[], None]) -> float:
    """Microseconds per frame of the fastest round (the least disturbed by other load)."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times) / frames * 1e6


def main(path: str) -> None:
    pcap = parse_pcap(Path(path).read_bytes())
    frames = [(record.time, record.data) for record in pcap.records[:MAX_FRAMES]]
    link = pcap.link_type

    def ours() -> None:
        for stamp, data in frames:
            decode_frame(link, data, stamp)

    print(f"frames: {len(frames)}")
    print(f"socklab decode: {best_of(5, len(frames), ours):.2f} us/packet")
    try:
        import dpkt  # type: ignore[import-not-found]
    except ImportError:
        print("dpkt: not installed")
    else:

        def theirs() -> None:
            for _stamp, data in frames:
                ip = dpkt.ethernet.Ethernet(data).data
                segment = ip.data
                (segment.sport, segment.dport, segment.data, getattr(segment, "flags", None))
                (dpkt.utils.inet_to_str(ip.src), dpkt.utils.inet_to_str(ip.dst))

        print(f"dpkt {dpkt.__version__} decode: {best_of(5, len(frames), theirs):.2f} us/packet")

    with open("/dev/null", "w", encoding="utf-8") as sink:
        env = Environment(io.StringIO(), sink, sink, {}, False, False)
        view = _LineView(_Printer(env, hex_dump=False))
        owners = SocketOwners(lambda: SocketTable(()))
        selection = PacketSelection()

        def whole_path() -> None:
            for stamp, data in frames:
                packet = decode_frame(link, data, stamp)
                if packet is not None and selection.matches(packet):
                    view.show(packet, owners.owner_of(packet))

        print(f"capture line view: {best_of(3, len(frames), whole_path):.2f} us/packet")


if __name__ == "__main__":
    main(sys.argv[1])
