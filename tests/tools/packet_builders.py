"""Packets built for the capture tests: an encoder of our own, independent of the decoder.

Checksums are zero: the decoders and pcap viewers do not check them. Layouts: RFC 791 (IPv4),
RFC 8200 (IPv6), RFC 9293 (TCP), RFC 768 (UDP), and Linux `lo`'s zeroed Ethernet header.
"""

from __future__ import annotations

import ipaddress
import struct

from socklab.tools.capture.packets import (
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    TcpFlags,
)

ETHERNET = struct.Struct("!6s6sH")
IPV4 = struct.Struct("!BBHHHBBH4s4s")
IPV6 = struct.Struct("!IHBB16s16s")
TCP = struct.Struct("!HHIIBBHHH")
UDP = struct.Struct("!HHHH")


def build_ipv4_tcp(
    src: tuple[str, int],
    dst: tuple[str, int],
    *,
    flags: TcpFlags,
    seq: int = 0,
    ack: int = 0,
    payload: bytes = b"",
    window: int = 65535,
) -> bytes:
    """An IPv4+TCP packet with zero checksums: enough for decoders and pcap viewers."""
    tcp = TCP.pack(src[1], dst[1], seq, ack, 5 << 4, int(flags), window, 0, 0) + payload
    return ipv4_header(src[0], dst[0], IPPROTO_TCP, len(tcp)) + tcp


def build_ipv4_udp(src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> bytes:
    udp = UDP.pack(src[1], dst[1], UDP.size + len(payload), 0) + payload
    return ipv4_header(src[0], dst[0], IPPROTO_UDP, len(udp)) + udp


def build_ipv6_tcp(
    src: tuple[str, int],
    dst: tuple[str, int],
    *,
    flags: TcpFlags,
    seq: int = 0,
    ack: int = 0,
    payload: bytes = b"",
) -> bytes:
    tcp = TCP.pack(src[1], dst[1], seq, ack, 5 << 4, int(flags), 65535, 0, 0) + payload
    header = IPV6.pack(
        6 << 28,
        len(tcp),
        IPPROTO_TCP,
        64,
        ipaddress.IPv6Address(src[0]).packed,
        ipaddress.IPv6Address(dst[0]).packed,
    )
    return header + tcp


def ipv4_header(src: str, dst: str, protocol: int, payload_length: int) -> bytes:
    return IPV4.pack(
        0x45,
        0,
        IPV4.size + payload_length,
        0,
        0x4000,  # don't fragment
        64,
        protocol,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )


def build_ethernet(ip_packet: bytes) -> bytes:
    """A Linux `lo` frame: zeroed MAC addresses, then the EtherType of the IP version."""
    ethertype = ETHERTYPE_IPV6 if ip_packet[0] >> 4 == 6 else ETHERTYPE_IPV4
    return ETHERNET.pack(b"\0" * 6, b"\0" * 6, ethertype) + ip_packet
