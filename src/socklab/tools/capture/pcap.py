"""The classic pcap file format (what tcpdump -w writes, what Wireshark and tshark read).

Format (https://www.tcpdump.org/manpages/pcap-savefile.5.html, draft-ietf-opsawg-pcap): a
24-byte global header (magic 0xA1B2C3D4 for microsecond stamps, version 2.4, snap length, link
type), then per packet a 16-byte record header (seconds, microseconds, captured length,
original length) and the captured bytes. We write little-endian; readers use the magic to
detect byte order. Encoding and parsing are pure functions; `PcapWriter` only adds the file.

Reading is streamed and bounded: `ByteReader` takes exactly the bytes a header announces, and
a length beyond `MAX_FRAME_BYTES` or past the end of the file is a `PcapFormatError` naming the
byte offset, never a large allocation. pcapng (`pcapng`) reads through the same `ByteReader`.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Final, NamedTuple

from socklab.i18n import _

MAGIC_MICROSECONDS: Final = 0xA1B2C3D4
MAGIC_NANOSECONDS: Final = 0xA1B23C4D
VERSION: Final = (2, 4)
DEFAULT_SNAPLEN: Final = 262144  # tcpdump's default since 4.9
# The largest packet a file may hold: libpcap refuses more than 262144 (its maximum snap length);
# four times that leaves room for odd writers and still bounds what one record can allocate.
MAX_FRAME_BYTES: Final = 1 << 20
_SKIP_CHUNK: Final = 1 << 16

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


def encode_records(records: Sequence[tuple[float, bytes, int]], snaplen: int) -> bytearray:
    """Many (time, data, original length) records as one buffer, headers packed in place.

    The capture writes a whole ring block this way: one buffer and one write() per block
    instead of a bytes object and a write() per packet. Same bytes as `encode_record` each.
    """
    size = 0
    for _time, data, _original in records:
        size += _RECORD.size + min(len(data), snaplen)
    buffer = bytearray(size)
    pack_into = _RECORD.pack_into
    offset = 0
    for time, data, original in records:
        seconds = int(time)
        microseconds = round((time - seconds) * 1_000_000)
        if microseconds >= 1_000_000:
            seconds, microseconds = seconds + 1, 0
        length = min(len(data), snaplen)
        pack_into(buffer, offset, seconds, microseconds, length, original)
        offset += _RECORD.size
        buffer[offset : offset + length] = data[:length] if length < len(data) else data
        offset += length
    return buffer


class SavedFrame(NamedTuple):
    """One packet read from a capture file, with the link type of its interface.

    `comment` is the pcapng opt_comment (None in classic pcap): text from the file, so escape it
    before showing it.
    """

    time: float
    data: bytes
    original_length: int
    link_type: int
    comment: str | None = None


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
    """The bytes are not a capture file socklab can read, or are cut short; `offset` says where."""

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset


class ByteReader:
    """Exact reads from a binary stream, counting the offset for error messages."""

    def __init__(self, stream: BinaryIO, offset: int = 0) -> None:
        self._stream = stream
        self.offset = offset

    def read_some(self, size: int) -> bytes:
        """Up to `size` bytes: fewer only at the end of the file (b"" there)."""
        data = self._stream.read(size)
        while data and len(data) < size:  # pipes hand over what they have
            more = self._stream.read(size - len(data))
            if not more:
                break
            data += more
        self.offset += len(data)
        return data

    def read(self, size: int, start: int) -> bytes:
        """Exactly `size` bytes of a structure that began at `start`, else PcapFormatError."""
        data = self.read_some(size)
        if len(data) < size:
            raise PcapFormatError(_("the file ends inside a block (cut short)"), start)
        return data

    def skip(self, size: int, start: int) -> None:
        while size > 0:
            size -= len(self.read(min(size, _SKIP_CHUNK), start))


def check_frame_length(captured: int, start: int) -> None:
    if captured > MAX_FRAME_BYTES:
        raise PcapFormatError(
            _("a packet of {size} bytes is larger than any capture holds ({limit} bytes)").format(
                size=captured, limit=MAX_FRAME_BYTES
            ),
            start,
        )


@dataclass(frozen=True, slots=True)
class PcapHeader:
    order: str  # "<" or ">"
    divisor: float  # 1e6 or 1e9: the unit of the fraction field
    snaplen: int
    link_type: int


def pcap_magic_order(magic: bytes) -> tuple[str, float] | None:
    """Byte order and time divisor for a classic pcap magic number, None for anything else."""
    for order, value in (
        ("<", int.from_bytes(magic, "little")),
        (">", int.from_bytes(magic, "big")),
    ):
        if value == MAGIC_MICROSECONDS:
            return order, 1e6
        if value == MAGIC_NANOSECONDS:
            return order, 1e9
    return None


def read_pcap_header(reader: ByteReader, head: bytes = b"") -> PcapHeader:
    """The 24-byte global header; `head` is what the caller already read of it."""
    data = head + reader.read_some(_GLOBAL.size - len(head))
    if len(data) < _GLOBAL.size:
        raise PcapFormatError(
            _("a file of {size} bytes is shorter than a pcap header (24)").format(size=len(data)),
            0,
        )
    found = pcap_magic_order(data[:4])
    if found is None:
        raise PcapFormatError(
            _("unknown magic number 0x{magic}: not a pcap or pcapng file").format(
                magic=data[:4].hex().upper()
            ),
            0,
        )
    order, divisor = found
    _magic, _major, _minor, _zone, _sigfigs, snaplen, link_type = struct.unpack(
        order + "IHHiIII", data
    )
    # The upper bits may carry the FCS length (draft-ietf-opsawg-pcap 4): the type is the low 16.
    return PcapHeader(order, divisor, snaplen, link_type & 0xFFFF)


def iter_pcap_records(reader: ByteReader, header: PcapHeader) -> Iterator[SavedFrame]:
    """The records after the global header, one at a time, until the end of the file."""
    record = struct.Struct(header.order + "IIII")
    while True:
        start = reader.offset
        raw = reader.read_some(record.size)
        if not raw:
            return
        if len(raw) < record.size:
            raise PcapFormatError(_("a record header is cut short"), start)
        seconds, fraction, captured, original = record.unpack(raw)
        check_frame_length(captured, start)
        data = reader.read(captured, start)
        yield SavedFrame(seconds + fraction / header.divisor, data, original, header.link_type)


def parse_pcap(data: bytes) -> PcapFile:
    """Read a whole classic pcap file of either byte order and either time resolution."""
    reader = ByteReader(io.BytesIO(data))
    header = read_pcap_header(reader)
    records = tuple(
        PcapRecord(frame.time, frame.data, frame.original_length)
        for frame in iter_pcap_records(reader, header)
    )
    return PcapFile(header.link_type, header.snaplen, records)


class PcapWriter:
    """Writes records to an open binary file; the caller owns (and closes) the file.

    The header is written at construction, so even an empty capture is a valid file.
    """

    def __init__(self, stream: BinaryIO, link_type: int, snaplen: int = DEFAULT_SNAPLEN):
        self._stream = stream
        self.snaplen = snaplen
        self.link_type = link_type
        self.packets_written = 0
        stream.write(encode_file_header(link_type, snaplen))

    def write(self, time: float, data: bytes, original_length: int | None = None) -> None:
        original = len(data) if original_length is None else original_length
        self._stream.write(encode_record(time, data[: self.snaplen], original))
        self.packets_written += 1

    def write_many(
        self,
        records: Sequence[tuple[float, bytes, int]],
        comments: Sequence[str | None] | None = None,
    ) -> None:
        """(time, data, original length) records in one file write: no Python write per packet.

        Classic pcap has no place for `comments`; they are dropped (pcapng keeps them)."""
        self._stream.write(encode_records(records, self.snaplen))
        self.packets_written += len(records)

    def flush(self) -> None:
        self._stream.flush()
