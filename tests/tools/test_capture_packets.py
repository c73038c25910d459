"""Decoding crafted frames, the pcap format, and the kernel filter against the user-space one."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from socklab.tools.capture.packets import (
    LINKTYPE_ETHERNET,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    TcpFlags,
    decode_frame,
    describe_flags,
)
from socklab.tools.capture.pcap import (
    PcapFormatError,
    PcapWriter,
    encode_file_header,
    encode_record,
    encode_records,
    parse_pcap,
)
from socklab.tools.capture.runner import display_should_skip
from socklab.tools.capture.selection import PacketSelection, build_bpf_program, run_bpf
from tests.tools.packet_builders import (
    build_ethernet,
    build_ipv4_tcp,
    build_ipv4_udp,
    build_ipv6_tcp,
)

CLIENT = ("127.0.0.1", 40000)
SERVER = ("127.0.0.1", 50000)


@pytest.mark.parametrize(
    ("flags", "text"),
    [
        (TcpFlags.SYN, "SYN"),
        (TcpFlags.SYN | TcpFlags.ACK, "SYN+ACK"),
        (TcpFlags.ACK, "ACK"),
        (TcpFlags.PSH | TcpFlags.ACK, "PSH+ACK"),
        (TcpFlags.FIN | TcpFlags.ACK, "FIN+ACK"),
        (TcpFlags.RST, "RST"),
        (TcpFlags.RST | TcpFlags.ACK, "RST+ACK"),
        (TcpFlags(0), ""),
    ],
)
def test_flag_names(flags: TcpFlags, text: str) -> None:
    assert describe_flags(flags) == text


def test_ethernet_ipv4_tcp_segment() -> None:
    frame = build_ethernet(
        build_ipv4_tcp(
            CLIENT,
            SERVER,
            flags=TcpFlags.PSH | TcpFlags.ACK,
            seq=2**32 - 1,
            ack=7,
            payload=b"U:a\nL:B\n",
        )
    )
    packet = decode_frame(LINKTYPE_ETHERNET, frame, 12.5)
    assert packet is not None
    assert (packet.proto, packet.family, packet.source, packet.destination) == (
        "tcp",
        "ipv4",
        CLIENT,
        SERVER,
    )
    assert packet.flags == TcpFlags.PSH | TcpFlags.ACK
    assert (packet.seq, packet.ack, packet.payload, packet.payload_length) == (
        2**32 - 1,
        7,
        b"U:a\nL:B\n",
        8,
    )
    assert packet.time == 12.5 and packet.sequence_space == 8


def test_syn_and_fin_use_one_sequence_number_each() -> None:
    syn = decode_frame(LINKTYPE_RAW, build_ipv4_tcp(CLIENT, SERVER, flags=TcpFlags.SYN), 0)
    fin = decode_frame(
        LINKTYPE_RAW, build_ipv4_tcp(CLIENT, SERVER, flags=TcpFlags.FIN | TcpFlags.ACK), 0
    )
    assert syn is not None and fin is not None
    assert syn.sequence_space == 1 and fin.sequence_space == 1


def test_ipv6_tcp_and_ipv4_udp() -> None:
    packet = decode_frame(
        LINKTYPE_ETHERNET,
        build_ethernet(build_ipv6_tcp(("::1", 1), ("::1", 2), flags=TcpFlags.SYN, seq=5)),
        0,
    )
    assert packet is not None and packet.family == "ipv6" and packet.src_ip == "::1"
    assert packet.flags == TcpFlags.SYN and packet.seq == 5
    datagram = decode_frame(LINKTYPE_RAW, build_ipv4_udp(CLIENT, SERVER, b"#7 U:x"), 0)
    assert datagram is not None
    assert (datagram.proto, datagram.payload, datagram.flags, datagram.seq) == (
        "udp",
        b"#7 U:x",
        None,
        None,
    )


@pytest.mark.parametrize("order", ["<", ">"])
def test_bsd_loopback_header_in_either_byte_order(order: str) -> None:
    ipv4 = struct.pack(order + "I", 2) + build_ipv4_udp(CLIENT, SERVER, b"x")
    ipv6 = struct.pack(order + "I", 30) + build_ipv6_tcp(("::1", 1), ("::1", 2), flags=TcpFlags.ACK)
    first, second = decode_frame(LINKTYPE_NULL, ipv4, 0), decode_frame(LINKTYPE_NULL, ipv6, 0)
    assert first is not None and first.family == "ipv4"
    assert second is not None and second.family == "ipv6"


def test_not_for_us_and_malformed_frames_are_none() -> None:
    segment = build_ipv4_tcp(CLIENT, SERVER, flags=TcpFlags.ACK, payload=b"abc")
    arp = b"\0" * 12 + b"\x08\x06" + b"\0" * 28
    assert decode_frame(LINKTYPE_ETHERNET, arp, 0) is None
    icmp = bytearray(build_ipv4_udp(CLIENT, SERVER, b"x"))
    icmp[9] = 1
    assert decode_frame(LINKTYPE_RAW, bytes(icmp), 0) is None
    for cut in range(len(segment) - 3):  # every truncation inside the headers
        assert decode_frame(LINKTYPE_RAW, segment[:cut], 0) is None
    later_fragment = bytearray(segment)
    later_fragment[6:8] = (0x0010).to_bytes(2, "big")
    assert decode_frame(LINKTYPE_RAW, bytes(later_fragment), 0) is None
    with pytest.raises(ValueError, match="link type 999"):
        decode_frame(999, segment, 0)


@given(st.binary(max_size=120), st.sampled_from([LINKTYPE_ETHERNET, LINKTYPE_NULL, LINKTYPE_RAW]))
def test_arbitrary_bytes_never_raise(frame: bytes, link_type: int) -> None:
    decode_frame(link_type, frame, 0.0)


# --- pcap ---------------------------------------------------------------------------------------


def test_pcap_header_is_the_classic_microsecond_format() -> None:
    header = encode_file_header(LINKTYPE_ETHERNET, 65535)
    assert header == bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000")
    assert encode_record(1.25, b"ab")[:16] == struct.pack("<IIII", 1, 250000, 2, 2)
    # Rounding up to a whole second carries into the seconds field.
    assert encode_record(1.9999999, b"")[:8] == struct.pack("<II", 2, 0)


def test_pcap_round_trip() -> None:
    import io

    buffer = io.BytesIO()
    writer = PcapWriter(buffer, LINKTYPE_RAW, snaplen=10)
    writer.write(1000.5, b"0123456789abc")  # longer than the snap length: cut, original kept
    writer.write(1001.0, b"xy")
    parsed = parse_pcap(buffer.getvalue())
    assert parsed.link_type == LINKTYPE_RAW and parsed.snaplen == 10
    assert [(r.time, r.data, r.original_length) for r in parsed.records] == [
        (1000.5, b"0123456789", 13),
        (1001.0, b"xy", 2),
    ]
    assert writer.packets_written == 2


def test_pcap_reader_rejects_junk_and_truncation() -> None:
    with pytest.raises(PcapFormatError, match="shorter than a pcap header"):
        parse_pcap(b"abc")
    with pytest.raises(PcapFormatError, match="magic"):
        parse_pcap(b"\0" * 24)
    good = encode_file_header(LINKTYPE_RAW) + encode_record(1.0, b"abcdef")
    with pytest.raises(PcapFormatError, match="cut short"):
        parse_pcap(good[:-1])


def test_big_endian_nanosecond_files_are_read_too() -> None:
    header = struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 100, LINKTYPE_RAW)
    record = struct.pack(">IIII", 3, 500_000_000, 1, 1) + b"z"
    parsed = parse_pcap(header + record)
    assert parsed.records[0].time == 3.5 and parsed.records[0].data == b"z"


# --- the kernel filter agrees with the user-space one ---------------------------------------------

SAMPLES = [
    build_ipv4_tcp(CLIENT, SERVER, flags=TcpFlags.SYN),
    build_ipv4_tcp(SERVER, CLIENT, flags=TcpFlags.ACK, payload=b"A\n"),
    build_ipv4_tcp(("127.0.0.1", 1), ("127.0.0.1", 2), flags=TcpFlags.ACK),
    build_ipv4_udp(CLIENT, SERVER, b"U:x"),
    build_ipv4_udp(("127.0.0.1", 3), ("127.0.0.1", 4), b"x"),
    build_ipv6_tcp(("::1", 40000), ("::1", 50000), flags=TcpFlags.SYN),
    build_ipv6_tcp(("::1", 5), ("::1", 6), flags=TcpFlags.SYN),
]
SELECTIONS = [
    PacketSelection(),
    PacketSelection(frozenset({"tcp"})),
    PacketSelection(frozenset({"udp"})),
    PacketSelection(frozenset({"tcp", "udp"}), 50000),
    PacketSelection(frozenset({"tcp"}), 50000),
    PacketSelection(frozenset({"udp"}), 40000),
    PacketSelection(frozenset({"udp"}), 4),
    PacketSelection(frozenset({"tcp", "udp"}), None, frozenset({4, 50000})),
    PacketSelection(frozenset({"tcp"}), 6, frozenset({1, 40000})),
]


def selection_id(selection: PacketSelection) -> str:
    """A test id that does not depend on set order (xdist workers must collect the same ids)."""
    ports = ",".join(str(port) for port in sorted(selection.ports)) or "None"
    return "+".join(sorted(selection.protocols)) + f":{ports}"


@pytest.mark.parametrize("selection", SELECTIONS, ids=selection_id)
@pytest.mark.parametrize("link_type", [LINKTYPE_ETHERNET, LINKTYPE_RAW])
def test_bpf_program_matches_the_user_space_selection(
    selection: PacketSelection, link_type: int
) -> None:
    program = build_bpf_program(link_type, selection, accept_bytes=65535)
    assert program is not None
    for ip_packet in SAMPLES:
        frame = build_ethernet(ip_packet) if link_type == LINKTYPE_ETHERNET else ip_packet
        packet = decode_frame(link_type, frame, 0)
        assert packet is not None
        accepted = run_bpf(program, frame) > 0
        assert accepted == selection.matches(packet), (selection, packet)


def test_bpf_drops_non_ip_even_when_all_tcp_and_udp_is_wanted() -> None:
    program = build_bpf_program(LINKTYPE_ETHERNET, PacketSelection(port=1), 100)
    assert program is not None
    assert run_bpf(program, b"\0" * 12 + b"\x08\x06" + b"\0" * 28) == 0
    assert run_bpf(program, b"") == 0
    everything = build_bpf_program(LINKTYPE_ETHERNET, PacketSelection(), 100)
    assert everything is not None
    assert run_bpf(everything, b"\0" * 12 + b"\x08\x06" + b"\0" * 28) == 0  # ARP
    udp = build_ethernet(build_ipv4_udp(("127.0.0.1", 1), ("127.0.0.1", 2), b"x"))
    assert run_bpf(everything, udp) == 100
    icmp = bytearray(udp)
    icmp[14 + 9] = 1
    assert run_bpf(everything, bytes(icmp)) == 0
    assert build_bpf_program(LINKTYPE_NULL, PacketSelection(port=1), 100) is None


# --- bulk pcap records and when the display skips ------------------------------------------------


@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=2**31, allow_nan=False),
            st.binary(max_size=80),
            st.integers(min_value=0, max_value=2**16),
        ),
        max_size=20,
    ),
    st.integers(min_value=1, max_value=100),
)
def test_bulk_records_are_the_single_records_joined(
    records: list[tuple[float, bytes, int]], snaplen: int
) -> None:
    expected = b"".join(
        encode_record(time, data[:snaplen], original) for time, data, original in records
    )
    assert bytes(encode_records(records, snaplen)) == expected


def test_display_skips_when_a_quarter_of_the_ring_waits_and_resumes_when_caught_up() -> None:
    assert not display_should_skip(False, 7, 32)
    assert display_should_skip(False, 8, 32)
    assert display_should_skip(True, 2, 32)  # still behind: keep skipping
    assert not display_should_skip(True, 1, 32)
    assert not display_should_skip(False, 1, 2)  # tiny ring: never on one block alone
    assert display_should_skip(False, 2, 2)
    assert not display_should_skip(False, 0, 0)  # no ring: always show
