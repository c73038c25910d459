"""Capture files of either format: read whatever tcpdump, Wireshark, tshark or RawCap wrote; write
the format the file name asks for.

Reading tells the formats apart by their first four bytes (a pcapng Section Header Block, or a
classic pcap magic of either byte order and time resolution) and yields `SavedFrame`s one at a
time, each with the link type of its interface, so a file of any size is read in bounded memory.
Writing picks pcapng for a name ending in `.pcapng` (packet comments, several link types) and
classic pcap for anything else, as tcpdump and Wireshark users expect from the name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from socklab.tools.capture.pcap import (
    ByteReader,
    PcapWriter,
    SavedFrame,
    iter_pcap_records,
    read_pcap_header,
)
from socklab.tools.capture.pcapng import SHB_MAGIC_BYTES, PcapngWriter, iter_pcapng_frames

CaptureWriter = PcapWriter | PcapngWriter


def read_capture(stream: BinaryIO) -> tuple[str, Iterator[SavedFrame]]:
    """The format ("pcap" or "pcapng") and the frames; a bad header raises PcapFormatError now,
    a bad record later, while iterating."""
    reader = ByteReader(stream)
    head = reader.read_some(4)
    if head == SHB_MAGIC_BYTES:
        return "pcapng", iter_pcapng_frames(reader, head)
    header = read_pcap_header(reader, head)
    return "pcap", iter_pcap_records(reader, header)


def wants_pcapng(path: Path) -> bool:
    return path.suffix.lower() == ".pcapng"


def make_writer(
    stream: BinaryIO, path: Path, link_type: int, snaplen: int, interface: str | None = None
) -> CaptureWriter:
    if wants_pcapng(path):
        return PcapngWriter(stream, link_type, snaplen, interface)
    return PcapWriter(stream, link_type, snaplen)
