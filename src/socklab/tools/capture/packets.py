"""Decoding captured frames: link layer, IPv4/IPv6, TCP and UDP headers. Pure: bytes in, dataclasses out.

Strategy: `struct.unpack_from` on the fields a socket lesson needs, nothing more (tcpdump's
one-line view, not Wireshark's tree). Each layer checks its own length fields, so a truncated
or malformed frame becomes `None` (not for us) instead of an exception: the capture loop never
needs a `try`. IPv4 fragments other than the first carry no transport header and are skipped;
IPv6 extension headers are walked (hop-by-hop, routing, destination options) up to a bound.

Header layouts: Ethernet II (IEEE 802.3), BSD loopback (DLT_NULL: a 4-byte address family in
host order), Linux cooked capture v1 and v2 (what `tcpdump -i any` writes:
https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html and .../LINKTYPE_LINUX_SLL2.html),
IPv4 (RFC 791), IPv6 (RFC 8200), TCP (RFC 9293 3.1), UDP (RFC 768).
"""

from __future__ import annotations

import enum
import socket
import struct
from dataclasses import dataclass
from typing import Final

# pcap link types (https://www.tcpdump.org/linktypes.html)
LINKTYPE_NULL: Final = 0  # BSD loopback: 4-byte AF_ value in the capturing host's byte order
LINKTYPE_ETHERNET: Final = 1  # also Linux `lo`, which carries zeroed Ethernet headers
LINKTYPE_RAW: Final = 101  # a bare IPv4 or IPv6 packet (tun devices, Windows raw sockets)
LINKTYPE_LINUX_SLL: Final = 113  # Linux cooked capture v1 (`tcpdump -i any` before libpcap 1.10)
LINKTYPE_IPV4: Final = 228  # a bare IPv4 packet
LINKTYPE_IPV6: Final = 229  # a bare IPv6 packet
LINKTYPE_LINUX_SLL2: Final = 276  # Linux cooked capture v2 (`tcpdump -i any`, libpcap 1.10+)
# Names as tcpdump prints them (pcap_datalink_val_to_name), for messages.
LINK_TYPE_NAMES: Final = {
    LINKTYPE_NULL: "NULL",
    LINKTYPE_ETHERNET: "EN10MB",
    LINKTYPE_RAW: "RAW",
    LINKTYPE_LINUX_SLL: "LINUX_SLL",
    LINKTYPE_IPV4: "IPV4",
    LINKTYPE_IPV6: "IPV6",
    LINKTYPE_LINUX_SLL2: "LINUX_SLL2",
}
SUPPORTED_LINK_TYPES: Final = frozenset(LINK_TYPE_NAMES)

ETHERTYPE_IPV4: Final = 0x0800
ETHERTYPE_IPV6: Final = 0x86DD
ETHERTYPE_VLAN: Final = 0x8100
IPPROTO_TCP: Final = 6
IPPROTO_UDP: Final = 17
# IPv6 extension headers that share the "next header, length in 8-byte units" layout (RFC 8200 4).
_IPV6_EXTENSIONS: Final = frozenset({0, 43, 60})
_IPV6_FRAGMENT: Final = 44
_MAX_IPV6_EXTENSIONS: Final = 8
# BSD AF_INET6 differs per OS (24 NetBSD/OpenBSD, 28 FreeBSD, 30 macOS); libpcap accepts all three.
_NULL_IPV4: Final = frozenset({2})
_NULL_IPV6: Final = frozenset({24, 28, 30})
# Cooked headers: the ethertype sits at byte 14 (v1) or 0 (v2); the ARPHRD_ type at 2 or 8 and the
# packet type (PACKET_OUTGOING = 4) at 0 (u16) or 10 (u8).
_SLL_SIZE: Final = 16
_SLL2_SIZE: Final = 20
_ARPHRD_LOOPBACK: Final = 772
_PACKET_OUTGOING: Final = 4

_ETHERNET = struct.Struct("!6s6sH")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_TCP = struct.Struct("!HHIIBBHHH")
_UDP = struct.Struct("!HHHH")


class TcpFlags(enum.IntFlag):
    """The TCP control bits (RFC 9293 3.1; ECE/CWR from RFC 3168)."""

    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10
    URG = 0x20
    ECE = 0x40
    CWR = 0x80


# The order tcpdump and the lecture name them: SYN+ACK, PSH+ACK, FIN+ACK.
_FLAG_ORDER: Final = (
    TcpFlags.SYN,
    TcpFlags.FIN,
    TcpFlags.RST,
    TcpFlags.PSH,
    TcpFlags.URG,
    TcpFlags.ACK,
    TcpFlags.ECE,
    TcpFlags.CWR,
)


def _name_flags(bits: int) -> str:
    return "+".join(str(flag.name) for flag in _FLAG_ORDER if bits & flag)


# Building an IntFlag and naming it cost microseconds; a capture does it per packet, so all 256
# combinations are made once.
_FLAG_VALUES: Final = tuple(TcpFlags(bits) for bits in range(256))
_FLAG_NAMES: Final = tuple(_name_flags(bits) for bits in range(256))


def describe_flags(flags: TcpFlags) -> str:
    """'SYN+ACK', 'PSH+ACK', 'FIN+ACK', 'RST' ... ; '' when no bit is set."""
    return _FLAG_NAMES[int(flags) & 0xFF]


@dataclass(frozen=True, slots=True)
class Packet:
    """One TCP segment or UDP datagram as captured.

    `seq`, `ack` and `flags` are None for UDP. `payload` is what the capture kept (it may be
    cut by the snap length); `payload_length` is the length the headers announce.
    """

    time: float
    proto: str  # "tcp" | "udp"
    family: str  # "ipv4" | "ipv6"
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    payload: bytes
    payload_length: int
    flags: TcpFlags | None = None
    seq: int | None = None
    ack: int | None = None
    window: int | None = None

    @property
    def source(self) -> tuple[str, int]:
        return self.src_ip, self.src_port

    @property
    def destination(self) -> tuple[str, int]:
        return self.dst_ip, self.dst_port

    def has(self, flag: TcpFlags) -> bool:
        return self.flags is not None and bool(self.flags & flag)

    @property
    def sequence_space(self) -> int:
        """Bytes of sequence space used: payload plus one each for SYN and FIN (RFC 9293 3.4)."""
        return (
            self.payload_length
            + (1 if self.has(TcpFlags.SYN) else 0)
            + (1 if self.has(TcpFlags.FIN) else 0)
        )


def format_ipv4(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET, raw)


def format_ipv6(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6, raw)


def decode_frame(link_type: int, frame: bytes, time: float) -> Packet | None:
    """The TCP/UDP packet in one captured frame, or None for anything else (ARP, ICMP, junk)."""
    if link_type == LINKTYPE_ETHERNET:
        if len(frame) < _ETHERNET.size:
            return None
        _dst, _src, ethertype = _ETHERNET.unpack_from(frame)
        offset = _ETHERNET.size
        if ethertype == ETHERTYPE_VLAN and len(frame) >= offset + 4:
            ethertype = int.from_bytes(frame[offset + 2 : offset + 4], "big")
            offset += 4
        if ethertype == ETHERTYPE_IPV4:
            return decode_ipv4(frame, offset, time)
        if ethertype == ETHERTYPE_IPV6:
            return decode_ipv6(frame, offset, time)
        return None
    if link_type == LINKTYPE_NULL:
        if len(frame) < 4:
            return None
        # The family is in the byte order of the host that captured: accept both.
        little = int.from_bytes(frame[:4], "little")
        big = int.from_bytes(frame[:4], "big")
        if little in _NULL_IPV4 or big in _NULL_IPV4:
            return decode_ipv4(frame, 4, time)
        if little in _NULL_IPV6 or big in _NULL_IPV6:
            return decode_ipv6(frame, 4, time)
        return None
    if link_type in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        return decode_ip(frame, 0, time)
    if link_type == LINKTYPE_LINUX_SLL:
        if len(frame) < _SLL_SIZE:
            return None
        outgoing = int.from_bytes(frame[0:2], "big") == _PACKET_OUTGOING
        return _decode_cooked(
            frame, _SLL_SIZE, int.from_bytes(frame[2:4], "big"), outgoing, frame[14:16], time
        )
    if link_type == LINKTYPE_LINUX_SLL2:
        if len(frame) < _SLL2_SIZE:
            return None
        outgoing = frame[10] == _PACKET_OUTGOING
        return _decode_cooked(
            frame, _SLL2_SIZE, int.from_bytes(frame[8:10], "big"), outgoing, frame[0:2], time
        )
    raise ValueError(f"unsupported link type {link_type}")


def _decode_cooked(
    frame: bytes, offset: int, hardware: int, outgoing: bool, ethertype: bytes, time: float
) -> Packet | None:
    """A Linux cooked frame. On a loopback device each packet passes twice (leaving, arriving):
    the leaving copy is skipped, as the live capture skips it, so each packet shows once."""
    if outgoing and hardware == _ARPHRD_LOOPBACK:
        return None
    kind = int.from_bytes(ethertype, "big")
    if kind == ETHERTYPE_IPV4:
        return decode_ipv4(frame, offset, time)
    if kind == ETHERTYPE_IPV6:
        return decode_ipv6(frame, offset, time)
    return None


def decode_ip(data: bytes, offset: int, time: float) -> Packet | None:
    """An IP packet of either version, told apart by its first nibble."""
    if len(data) <= offset:
        return None
    version = data[offset] >> 4
    if version == 4:
        return decode_ipv4(data, offset, time)
    if version == 6:
        return decode_ipv6(data, offset, time)
    return None


def decode_ipv4(data: bytes, offset: int, time: float) -> Packet | None:
    if len(data) < offset + _IPV4.size:
        return None
    (version_ihl, _tos, total_length, _ident, fragment, _ttl, protocol, _checksum, src, dst) = (
        _IPV4.unpack_from(data, offset)
    )
    header_length = (version_ihl & 0x0F) * 4
    if version_ihl >> 4 != 4 or header_length < _IPV4.size or total_length < header_length:
        return None
    if fragment & 0x1FFF:  # not the first fragment: no transport header here
        return None
    # Linux hands over frames with TSO/GRO super-packets whose total length reads 0; trust the
    # frame then, as tcpdump does.
    end = offset + total_length if total_length else len(data)
    return _decode_transport(
        protocol,
        data,
        offset + header_length,
        end,
        time,
        "ipv4",
        format_ipv4(src),
        format_ipv4(dst),
    )


def decode_ipv6(data: bytes, offset: int, time: float) -> Packet | None:
    if len(data) < offset + _IPV6.size:
        return None
    first_word, payload_length, next_header, _hop_limit, src, dst = _IPV6.unpack_from(data, offset)
    if first_word >> 28 != 6:
        return None
    position = offset + _IPV6.size
    end = position + payload_length if payload_length else len(data)  # 0: jumbogram (RFC 2675)
    for _ in range(_MAX_IPV6_EXTENSIONS):
        if next_header in _IPV6_EXTENSIONS:
            if len(data) < position + 2:
                return None
            next_header, length_units = data[position], data[position + 1]
            position += (length_units + 1) * 8
        elif next_header == _IPV6_FRAGMENT:
            if len(data) < position + 8:
                return None
            fragment_offset = int.from_bytes(data[position + 2 : position + 4], "big") >> 3
            if fragment_offset:
                return None
            next_header = data[position]
            position += 8
        else:
            break
    return _decode_transport(
        next_header, data, position, end, time, "ipv6", format_ipv6(src), format_ipv6(dst)
    )


def _decode_transport(
    protocol: int,
    data: bytes,
    offset: int,
    end: int,
    time: float,
    family: str,
    src_ip: str,
    dst_ip: str,
) -> Packet | None:
    if protocol == IPPROTO_TCP:
        if len(data) < offset + _TCP.size:
            return None
        src_port, dst_port, seq, ack, data_offset, flags, window, _sum, _urgent = _TCP.unpack_from(
            data, offset
        )
        header_length = (data_offset >> 4) * 4
        if header_length < _TCP.size or offset + header_length > end:
            return None
        start = offset + header_length
        return Packet(
            time=time,
            proto="tcp",
            family=family,
            src_ip=src_ip,
            src_port=src_port,
            dst_ip=dst_ip,
            dst_port=dst_port,
            payload=data[start:end],
            payload_length=end - start,
            flags=_FLAG_VALUES[flags],
            seq=seq,
            ack=ack,
            window=window,
        )
    if protocol == IPPROTO_UDP:
        if len(data) < offset + _UDP.size:
            return None
        src_port, dst_port, length, _sum = _UDP.unpack_from(data, offset)
        if length < _UDP.size:
            return None
        start = offset + _UDP.size
        payload_length = length - _UDP.size
        return Packet(
            time=time,
            proto="udp",
            family=family,
            src_ip=src_ip,
            src_port=src_port,
            dst_ip=dst_ip,
            dst_port=dst_port,
            payload=data[start : min(start + payload_length, end)],
            payload_length=payload_length,
        )
    return None
