"""The pcapng file format: what Wireshark, tshark and dumpcap write, and socklab's `-w FILE.pcapng`.

Format (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-03.html): a sequence of
blocks, each `type, total length, body, total length` with lengths a multiple of 4. A Section
Header Block (SHB) starts each section and fixes its byte order (its byte-order magic); an
Interface Description Block (IDB) per interface gives the link type, snap length and time
resolution (option if_tsresol, if_tsoffset); packets come in Enhanced Packet Blocks (EPB: an
interface id, a 64-bit timestamp, options such as opt_comment), Simple Packet Blocks (SPB: no
time, interface 0) or the obsolete Packet Block. Other blocks (name resolution, statistics,
decryption secrets, custom) are skipped. A file may hold several sections, each with its own
byte order and interfaces.

Reading is streamed through `pcap.ByteReader` and bounded: a block longer than
`MAX_BLOCK_BYTES` is refused (unknown blocks are skipped in chunks), a packet longer than its
block or than `pcap.MAX_FRAME_BYTES` is an error with the byte offset of its block.

Writing (`PcapngWriter`): one little-endian section, one IDB per link type, and an EPB per
packet with microsecond stamps (the IDB's default resolution) and, where socklab knows which
process the packet is delivered to, the comment "pid 1234 (name)" that tshark shows as
`frame.comment` and Wireshark in the packet details.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Final

from socklab.i18n import _
from socklab.tools.capture.pcap import (
    DEFAULT_SNAPLEN,
    ByteReader,
    PcapFormatError,
    SavedFrame,
    check_frame_length,
)

BLOCK_SHB: Final = 0x0A0D0D0A  # the same bytes in either byte order
BLOCK_IDB: Final = 0x00000001
BLOCK_PB: Final = 0x00000002  # obsolete Packet Block
BLOCK_SPB: Final = 0x00000003
BLOCK_EPB: Final = 0x00000006
BYTE_ORDER_MAGIC: Final = 0x1A2B3C4D
SHB_MAGIC_BYTES: Final = BLOCK_SHB.to_bytes(4, "little")

OPT_ENDOFOPT: Final = 0
OPT_COMMENT: Final = 1
SHB_USERAPPL: Final = 4
IF_NAME: Final = 2
IF_TSRESOL: Final = 9
IF_TSOFFSET: Final = 14

# Wireshark refuses blocks over 16 MiB (larger for packets); one packet is at most
# MAX_FRAME_BYTES, so a packet block beyond this is broken, and other blocks we read are small.
MAX_BLOCK_BYTES: Final = 16 << 20
MAX_INTERFACES: Final = 65536  # per section; each costs memory, a file could declare millions
MAX_COMMENT_BYTES: Final = 1024  # a comment is cut here when written, and when read

_HEAD = struct.Struct("<II")
_OPTION = struct.Struct("<HH")


@dataclass(frozen=True, slots=True)
class _Interface:
    link_type: int
    snaplen: int
    divisor: float  # timestamp units per second
    offset_s: int  # if_tsoffset: seconds added to every stamp


def _padded(length: int) -> int:
    return (length + 3) & ~3


def _options(order: str, data: bytes) -> Iterator[tuple[int, bytes]]:
    """(code, value) for each option until opt_endofopt or the end of the data."""
    option = struct.Struct(order + "HH")
    position = 0
    while position + option.size <= len(data):
        code, length = option.unpack_from(data, position)
        if code == OPT_ENDOFOPT:
            return
        position += option.size
        yield code, data[position : position + length]
        position += _padded(length)


def _read_interface(order: str, body: bytes, start: int) -> _Interface:
    if len(body) < 8:
        raise PcapFormatError(_("an interface block is too short"), start)
    link_type, _reserved, snaplen = struct.unpack_from(order + "HHI", body)
    divisor, offset_s = 1e6, 0
    for code, value in _options(order, body[8:]):
        if code == IF_TSRESOL and value:
            exponent = value[0] & 0x7F
            divisor = float(2**exponent if value[0] & 0x80 else 10**exponent)
        elif code == IF_TSOFFSET and len(value) == 8:
            offset_s = struct.unpack(order + "q", value)[0]
    return _Interface(link_type, snaplen, divisor, offset_s)


def _comment(order: str, options: bytes) -> str | None:
    for code, value in _options(order, options):
        if code == OPT_COMMENT:
            return value[:MAX_COMMENT_BYTES].decode("utf-8", errors="replace")
    return None


def _interface_of(interfaces: list[_Interface], index: int, start: int) -> _Interface:
    if index >= len(interfaces):
        raise PcapFormatError(
            _("a packet names interface {index}, but the section describes {count}").format(
                index=index, count=len(interfaces)
            ),
            start,
        )
    return interfaces[index]


def _frame_data(body: bytes, header_size: int, captured: int, start: int) -> bytes:
    check_frame_length(captured, start)
    if header_size + captured > len(body):
        raise PcapFormatError(_("a packet runs past the end of its block"), start)
    return body[header_size : header_size + captured]


def iter_pcapng_frames(reader: ByteReader, head: bytes) -> Iterator[SavedFrame]:
    """The packets of a pcapng file whose first 4 bytes (`head`) the caller has read."""
    order: str | None = None
    interfaces: list[_Interface] = []
    last_time = 0.0  # a Simple Packet Block has no stamp: it gets the previous packet's
    first = head
    while True:
        start = reader.offset - len(first)
        first += reader.read_some(8 - len(first))
        if not first:
            return
        if len(first) < 8:
            raise PcapFormatError(_("a block header is cut short"), start)
        if first[:4] == SHB_MAGIC_BYTES:
            magic = reader.read(4, start)
            if int.from_bytes(magic, "little") == BYTE_ORDER_MAGIC:
                order = "<"
            elif int.from_bytes(magic, "big") == BYTE_ORDER_MAGIC:
                order = ">"
            else:
                raise PcapFormatError(_("a section header has no valid byte-order magic"), start)
            length = struct.unpack(order + "I", first[4:8])[0]
            body = _read_block(reader, order, length, start, minimum=28, already=12)
            major, minor = struct.unpack_from(order + "HH", body)
            if major != 1:
                raise PcapFormatError(
                    _("pcapng version {major}.{minor} is not supported (only 1.x)").format(
                        major=major, minor=minor
                    ),
                    start,
                )
            interfaces = []
        elif order is None:
            raise PcapFormatError(_("a pcapng file must begin with a section header"), start)
        else:
            block_type, length = struct.unpack(order + "II", first)
            if block_type in (BLOCK_IDB, BLOCK_EPB, BLOCK_SPB, BLOCK_PB):
                body = _read_block(reader, order, length, start, minimum=12, already=8)
                frame = _decode_block(order, block_type, body, interfaces, last_time, start)
                if frame is not None:
                    last_time = frame.time
                    yield frame
            else:
                _check_length(length, start, minimum=12)
                reader.skip(length - 8, start)  # a block we do not need: never held whole
        first = b""


def _check_length(length: int, start: int, *, minimum: int) -> None:
    if length < minimum or length % 4:
        raise PcapFormatError(
            _("a block announces an impossible length of {length} bytes").format(length=length),
            start,
        )


def _read_block(
    reader: ByteReader, order: str, length: int, start: int, *, minimum: int, already: int
) -> bytes:
    """The body of a block (after the first `already` bytes), its trailing length checked."""
    _check_length(length, start, minimum=minimum)
    if length > MAX_BLOCK_BYTES:
        raise PcapFormatError(
            _("a block of {length} bytes is larger than socklab reads ({limit})").format(
                length=length, limit=MAX_BLOCK_BYTES
            ),
            start,
        )
    rest = reader.read(length - already, start)
    if struct.unpack(order + "I", rest[-4:])[0] != length:
        raise PcapFormatError(_("a block's two length fields disagree"), start)
    return rest[:-4]


def _decode_block(
    order: str,
    block_type: int,
    body: bytes,
    interfaces: list[_Interface],
    last_time: float,
    start: int,
) -> SavedFrame | None:
    """An IDB is added to `interfaces` (None returned); a packet block becomes a frame."""
    if block_type == BLOCK_IDB:
        if len(interfaces) >= MAX_INTERFACES:
            raise PcapFormatError(
                _("more than {limit} interfaces in one section").format(limit=MAX_INTERFACES),
                start,
            )
        interfaces.append(_read_interface(order, body, start))
        return None
    if block_type == BLOCK_SPB:
        if len(body) < 4:
            raise PcapFormatError(_("a packet block is too short"), start)
        interface = _interface_of(interfaces, 0, start)
        original = struct.unpack_from(order + "I", body)[0]
        captured = min(original, len(body) - 4)
        if interface.snaplen:
            captured = min(captured, interface.snaplen)
        data = _frame_data(body, 4, captured, start)
        return SavedFrame(last_time, data, original, interface.link_type)
    if block_type == BLOCK_EPB:
        layout, header_size = order + "IIIII", 20
    else:  # the obsolete Packet Block: a 16-bit interface id and a drop counter
        layout, header_size = order + "HHIIII", 20
    if len(body) < header_size:
        raise PcapFormatError(_("a packet block is too short"), start)
    fields = struct.unpack_from(layout, body)
    index, high, low, captured, original = (
        fields if block_type == BLOCK_EPB else (fields[0], *fields[2:])
    )
    interface = _interface_of(interfaces, index, start)
    data = _frame_data(body, header_size, captured, start)
    options = body[header_size + _padded(captured) :]
    stamp = ((high << 32) | low) / interface.divisor + interface.offset_s
    return SavedFrame(stamp, data, original, interface.link_type, _comment(order, options))


# --- writing --------------------------------------------------------------------------------------


def _encode_option(code: int, value: bytes) -> bytes:
    return _OPTION.pack(code, len(value)) + value + b"\0" * (_padded(len(value)) - len(value))


_END_OF_OPTIONS: Final = _OPTION.pack(OPT_ENDOFOPT, 0)


def _block(block_type: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return _HEAD.pack(block_type, length) + body + length.to_bytes(4, "little")


def encode_section_header(application: str = "socklab") -> bytes:
    options = _encode_option(SHB_USERAPPL, application.encode()) + _END_OF_OPTIONS
    return _block(BLOCK_SHB, struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + options)


def encode_interface(link_type: int, snaplen: int, name: str | None = None) -> bytes:
    options = b""
    if name:
        options = _encode_option(IF_NAME, name.encode()) + _END_OF_OPTIONS
    return _block(BLOCK_IDB, struct.pack("<HHI", link_type, 0, snaplen) + options)


def encode_comment(comment: str) -> bytes:
    """An opt_comment, cut to MAX_COMMENT_BYTES on a character boundary."""
    raw = comment.encode()[:MAX_COMMENT_BYTES].decode("utf-8", errors="ignore").encode()
    return _encode_option(OPT_COMMENT, raw)


def encode_packet(
    interface: int,
    time: float,
    data: bytes,
    original_length: int,
    comment: str | None = None,
) -> bytes:
    """An Enhanced Packet Block with a microsecond stamp and, if given, a comment."""
    units = round(time * 1_000_000)
    options = encode_comment(comment) + _END_OF_OPTIONS if comment else b""
    body = (
        struct.pack(
            "<IIIII", interface, units >> 32, units & 0xFFFFFFFF, len(data), original_length
        )
        + data
        + b"\0" * (_padded(len(data)) - len(data))
        + options
    )
    return _block(BLOCK_EPB, body)


class PcapngWriter:
    """Writes pcapng to an open binary file; the caller owns (and closes) the file.

    The section header and the first interface are written at construction, so even an empty
    capture is a valid file. `interface_for(link_type)` adds an interface for frames of another
    link type (a pcapng file read with -r may have several).
    """

    def __init__(
        self,
        stream: BinaryIO,
        link_type: int,
        snaplen: int = DEFAULT_SNAPLEN,
        interface_name: str | None = None,
    ) -> None:
        self._stream = stream
        self.snaplen = snaplen
        self.link_type = link_type
        self.packets_written = 0
        self._interfaces: dict[int, int] = {}
        stream.write(encode_section_header())
        self._interface_name = interface_name
        self.interface_for(link_type)

    def interface_for(self, link_type: int) -> int:
        if link_type not in self._interfaces:
            self._interfaces[link_type] = len(self._interfaces)
            self._stream.write(encode_interface(link_type, self.snaplen, self._interface_name))
        return self._interfaces[link_type]

    def write(
        self,
        time: float,
        data: bytes,
        original_length: int | None = None,
        comment: str | None = None,
        link_type: int | None = None,
    ) -> None:
        interface = self.interface_for(self.link_type if link_type is None else link_type)
        original = len(data) if original_length is None else original_length
        self._stream.write(encode_packet(interface, time, data[: self.snaplen], original, comment))
        self.packets_written += 1

    def write_many(
        self,
        records: Sequence[tuple[float, bytes, int]],
        comments: Sequence[str | None] | None = None,
    ) -> None:
        """(time, data, original length) records, each with its comment, in one file write."""
        snaplen = self.snaplen
        interface = self._interfaces[self.link_type]
        blocks = [
            encode_packet(
                interface,
                time,
                data[:snaplen],
                original,
                comments[number] if comments is not None else None,
            )
            for number, (time, data, original) in enumerate(records)
        ]
        self._stream.write(b"".join(blocks))
        self.packets_written += len(records)

    def flush(self) -> None:
        self._stream.flush()
