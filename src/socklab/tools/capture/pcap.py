"""The classic pcap file format (what tcpdump -w writes, what Wireshark and tshark read).

Format (https://www.tcpdump.org/manpages/pcap-savefile.5.html, draft-ietf-opsawg-pcap): a
24-byte global header (magic 0xA1B2C3D4 for microsecond stamps, version 2.4, snap length, link
type), then per packet a 16-byte record header (seconds, microseconds, captured length,
original length) and the captured bytes. We write little-endian; readers use the magic to
detect byte order. Encoding and parsing are pure functions; `PcapWriter` only adds the file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO, Final

MAGIC_MICROSECONDS: Final = 0xA1B2C3D4
MAGIC_NANOSECONDS: Final = 0xA1B23C4D
VERSION: Final = (2, 4)
DEFAULT_SNAPLEN: Final = 262144  # tcpdump's default since 4.9

_GLOBAL = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")


def encode_file_header(link_type: int, snaplen: int = DEFAULT_SNAPLEN) -> bytes:
    return _GLOBAL.pack(MAGIC_MICROSECONDS, *VERSION, 0, 0, snaplen, link_type)


def encode_record(time: float, data: bytes, original_length: int | None = None) -> bytes:
    """One packet record; `time` is seconds since the epoch."""
    seconds = int(time)
    microseconds = round((time - seconds) * 1_000_000)
    if microseconds >= 1_000_000:  # rounding up from .9999995
        seconds, microseconds = seconds + 1, 0
    length = len(data)
    return (
        _RECORD.pack(
            seconds, microseconds, length, length if original_length is None else original_length
        )
        + data
    )


@dataclass(frozen=True, slots=True)
class PcapRecord:
    time: float
    data: bytes
    original_length: int


@dataclass(frozen=True, slots=True)
class PcapFile:
    link_type: int
    snaplen: int
    records: tuple[PcapRecord, ...]


class PcapFormatError(ValueError):
    """The bytes are not a classic pcap file (or are cut short)."""


def parse_pcap(data: bytes) -> PcapFile:
    """Read a whole classic pcap file of either byte order and either time resolution."""
    if len(data) < _GLOBAL.size:
        raise PcapFormatError(f"file of {len(data)} bytes is shorter than a pcap header (24)")
    magic_le = int.from_bytes(data[:4], "little")
    magic_be = int.from_bytes(data[:4], "big")
    if magic_le in (MAGIC_MICROSECONDS, MAGIC_NANOSECONDS):
        order, magic = "<", magic_le
    elif magic_be in (MAGIC_MICROSECONDS, MAGIC_NANOSECONDS):
        order, magic = ">", magic_be
    else:
        raise PcapFormatError(f"unknown pcap magic number 0x{magic_le:08X}")
    divisor = 1e9 if magic == MAGIC_NANOSECONDS else 1e6
    _magic, _major, _minor, _zone, _sigfigs, snaplen, link_type = struct.unpack_from(
        order + "IHHiIII", data
    )
    record = struct.Struct(order + "IIII")
    records = []
    offset = _GLOBAL.size
    while offset < len(data):
        if offset + record.size > len(data):
            raise PcapFormatError(f"record header cut short at byte {offset}")
        seconds, fraction, captured, original = record.unpack_from(data, offset)
        offset += record.size
        if offset + captured > len(data):
            raise PcapFormatError(f"packet of {captured} bytes cut short at byte {offset}")
        records.append(
            PcapRecord(seconds + fraction / divisor, data[offset : offset + captured], original)
        )
        offset += captured
    return PcapFile(link_type, snaplen, tuple(records))


class PcapWriter:
    """Writes records to an open binary file; the caller owns (and closes) the file.

    The header is written at construction, so even an empty capture is a valid file.
    """

    def __init__(self, stream: BinaryIO, link_type: int, snaplen: int = DEFAULT_SNAPLEN):
        self._stream = stream
        self.snaplen = snaplen
        self.packets_written = 0
        stream.write(encode_file_header(link_type, snaplen))

    def write(self, time: float, data: bytes, original_length: int | None = None) -> None:
        original = len(data) if original_length is None else original_length
        self._stream.write(encode_record(time, data[: self.snaplen], original))
        self.packets_written += 1

    def flush(self) -> None:
        self._stream.flush()
