"""`socklab capture` keeps up: a burst of UDP datagrams on loopback, captured with no drops.

As root (CI runs as root). The capture runs at its default settings (all TCP and UDP on `lo`)
plus `-w`; the test offers 20,000 numbered datagrams as fast as one Python sender can (about
a second), waits until the pcap holds every one of them, stops the capture and checks its
summary: the kernel dropped nothing. A functional check, not a timing one: the display may
skip lines, but the count and the file must be complete.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from socklab.tools.capture.packets import decode_frame
from socklab.tools.capture.pcap import PcapFormatError, parse_pcap
from tests.socklab_process import SocklabProcess, free_port

# Counts packets on loopback: alone, after the parallel part of `make test`.
pytestmark = pytest.mark.serial

DATAGRAMS = 20_000
SEND_LIMIT_S = 10.0  # the burst normally takes about a second; a loaded CI machine gets more
SETTLE_LIMIT_S = 30.0


def numbered_datagrams_in(pcap: Path, port: int) -> set[int]:
    try:
        capture = parse_pcap(pcap.read_bytes())
    except PcapFormatError:
        return set()  # the last record is still being written
    numbers = set()
    for record in capture.records:
        packet = decode_frame(capture.link_type, record.data, record.time)
        if packet is not None and packet.proto == "udp" and packet.dst_port == port:
            numbers.add(int(packet.payload.split(b" ", 1)[0]))
    return numbers


def test_burst_is_captured_without_kernel_drops(
    start_socklab: Callable[..., SocklabProcess], tmp_path: Path
) -> None:
    pcap = tmp_path / "burst.pcap"
    capture = start_socklab(["capture", "-w", str(pcap)])
    capture.wait_for_line(r"^Capturing on lo ", timeout_s=30)
    port = free_port(socket.SOCK_DGRAM)
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        # Nobody reads the sink: the capture sees each datagram before its socket queue does.
        sink.bind(("127.0.0.1", port))
        sender.connect(("127.0.0.1", port))
        deadline = time.monotonic() + SEND_LIMIT_S
        for number in range(DATAGRAMS):
            sender.send(b"%d U:keep up with me\n" % number)
            if number % 1000 == 0:
                assert time.monotonic() < deadline, f"only {number} datagrams sent in time"
        settle = time.monotonic() + SETTLE_LIMIT_S
        while len(numbered_datagrams_in(pcap, port)) < DATAGRAMS and time.monotonic() < settle:
            time.sleep(0.2)
    assert capture.stop() == 0
    assert numbered_datagrams_in(pcap, port) == set(range(DATAGRAMS))
    summary = capture.stdout_lines[-1]
    match = re.match(
        r"([\d,]+) packets captured.*; kernel: ([\d,]+) received, 0 dropped; ([\d,]+) written",
        summary,
    )
    assert match, summary
    captured, written = (int(match[i].replace(",", "")) for i in (1, 3))
    assert captured >= DATAGRAMS and captured == written
