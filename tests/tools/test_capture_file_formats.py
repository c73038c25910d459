"""Capture files as other programs write them: pcapng of either byte order, several sections and
interfaces, time resolutions, packet block kinds; the cooked and raw link types; and hostile files
(cut at every byte, mutated at random, absurd lengths) that must end in PcapFormatError, never in
another exception or a large allocation. The last tests run `socklab capture -r` on crafted
files (no privileges needed): one-line errors, escaped comments, standard input.

The pcapng here is assembled by a small encoder of the test's own (`_block`, either byte order),
independent of socklab's writer; the specification is draft-ietf-opsawg-pcapng.
"""

from __future__ import annotations

import io
import random
import re
import struct
import subprocess
from pathlib import Path

import pytest

from socklab.cli.status import ExitStatus
from socklab.tools.capture.ladder import LadderBuilder
from socklab.tools.capture.packets import (
    LINKTYPE_ETHERNET,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    SUPPORTED_LINK_TYPES,
    TcpFlags,
    decode_frame,
)
from socklab.tools.capture.pcap import (
    MAX_FRAME_BYTES,
    PcapFormatError,
    SavedFrame,
    encode_file_header,
    encode_record,
)
from socklab.tools.capture.pcapng import PcapngWriter
from socklab.tools.capture.savefile import read_capture
from socklab.tools.capture.streams import SequenceNumbering
from tests.socklab_process import child_environment, run_socklab, socklab_command
from tests.tools.packet_builders import build_ethernet, build_ipv4_tcp, build_ipv6_tcp

CLIENT, SERVER = ("127.0.0.1", 40000), ("127.0.0.1", 50000)
SYN = build_ipv4_tcp(CLIENT, SERVER, flags=TcpFlags.SYN, seq=7)
DATA = build_ipv4_tcp(CLIENT, SERVER, flags=TcpFlags.PSH | TcpFlags.ACK, seq=8, payload=b"U:a\n")
SYN6 = build_ipv6_tcp(("::1", 40000), ("::1", 50000), flags=TcpFlags.SYN)


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + _pad(value)


def _block(order: str, block_type: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack(order + "II", block_type, length) + body + struct.pack(order + "I", length)


def _shb(order: str) -> bytes:
    return _block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def _idb(order: str, link_type: int, options: bytes = b"", snaplen: int = 0) -> bytes:
    if options:
        options += struct.pack(order + "HH", 0, 0)
    return _block(order, 1, struct.pack(order + "HHI", link_type, 0, snaplen) + options)


def _epb(order: str, interface: int, units: int, data: bytes, options: bytes = b"") -> bytes:
    if options:
        options += struct.pack(order + "HH", 0, 0)
    head = struct.pack(
        order + "IIIII", interface, units >> 32, units & 0xFFFFFFFF, len(data), len(data)
    )
    return _block(order, 6, head + _pad(data) + options)


def _read(data: bytes) -> tuple[str, list[SavedFrame]]:
    file_format, frames = read_capture(io.BytesIO(data))
    return file_format, list(frames)


def _sll(ip_packet: bytes, *, outgoing: bool = False, loopback: bool = True) -> bytes:
    """Linux cooked v1: packet type, ARPHRD type, address length, 8 address bytes, ethertype."""
    return (
        struct.pack("!HHH8sH", 4 if outgoing else 0, 772 if loopback else 1, 6, b"", 0x0800)
        + ip_packet
    )


def _sll2(ip_packet: bytes, *, outgoing: bool = False) -> bytes:
    """Linux cooked v2: ethertype, reserved, ifindex, ARPHRD type, packet type, address."""
    return struct.pack("!HHIHBB8s", 0x0800, 0, 1, 772, 4 if outgoing else 0, 6, b"") + ip_packet


def sample_pcapng() -> bytes:
    """Two sections: little-endian with two interfaces (microseconds; nanoseconds with an
    offset), an unknown block, a comment; then big-endian with 2^-10 stamps and an SPB."""
    little = (
        _shb("<")
        + _idb("<", LINKTYPE_ETHERNET)
        + _idb(
            "<", LINKTYPE_RAW, _option("<", 9, b"\x09") + _option("<", 14, struct.pack("<q", 100))
        )
        + _block("<", 0x0BAD, b"skip me!")
        + _epb("<", 0, 1_500_000, build_ethernet(SYN), _option("<", 1, b"pid 42 (srv)"))
        + _epb("<", 1, 2_250_000_000, DATA)
    )
    big = (
        _shb(">")
        + _idb(">", LINKTYPE_IPV6, _option(">", 9, b"\x8a"))
        + _epb(">", 0, 3 << 10, SYN6)
        + _block(">", 3, struct.pack(">I", len(SYN6)) + _pad(SYN6))
    )
    return little + big


def test_pcapng_sections_interfaces_resolutions_and_comments() -> None:
    file_format, frames = _read(sample_pcapng())
    assert file_format == "pcapng"
    assert [(f.time, f.link_type, f.comment) for f in frames] == [
        (1.5, LINKTYPE_ETHERNET, "pid 42 (srv)"),
        (102.25, LINKTYPE_RAW, None),  # nanoseconds plus if_tsoffset 100 s
        (3.0, LINKTYPE_IPV6, None),  # 2^-10 s units, big-endian section
        (3.0, LINKTYPE_IPV6, None),  # SPB: no stamp of its own, the previous one
    ]
    packets = [decode_frame(f.link_type, f.data, f.time) for f in frames]
    assert [p.dst_port if p else None for p in packets] == [50000] * 4
    assert packets[1] is not None and packets[1].payload == b"U:a\n"


def test_cooked_captures_decode_and_skip_the_outgoing_loopback_copy() -> None:
    for link_type, build in ((LINKTYPE_LINUX_SLL, _sll), (LINKTYPE_LINUX_SLL2, _sll2)):
        packet = decode_frame(link_type, build(DATA), 1.0)
        assert packet is not None and packet.payload == b"U:a\n" and packet.seq == 8
        assert decode_frame(link_type, build(DATA, outgoing=True), 1.0) is None
        assert decode_frame(link_type, build(DATA)[:10], 1.0) is None
    # An outgoing packet of a real interface is the only copy: kept.
    assert decode_frame(LINKTYPE_LINUX_SLL, _sll(DATA, outgoing=True, loopback=False), 1.0)
    # macOS lo0 (NULL, AF_INET in the writer's byte order) and RawCap (RAW) carry the same packet.
    for frame in (b"\x02\0\0\0" + SYN, b"\0\0\0\x02" + SYN):
        assert decode_frame(LINKTYPE_NULL, frame, 1.0) == decode_frame(LINKTYPE_RAW, SYN, 1.0)


def test_classic_pcap_of_another_link_type_is_read_as_a_stream() -> None:
    data = encode_file_header(LINKTYPE_NULL) + encode_record(5.0, b"\x02\0\0\0" + SYN)
    file_format, frames = _read(data)
    assert file_format == "pcap" and frames[0].link_type == LINKTYPE_NULL
    assert frames[0].time == 5.0 and frames[0].comment is None


def test_socklab_pcapng_writer_round_trips_comments_and_link_types() -> None:
    buffer = io.BytesIO()
    writer = PcapngWriter(buffer, LINKTYPE_ETHERNET, snaplen=100, interface_name="lo")
    writer.write_many([(1.25, build_ethernet(SYN), 54)], ["pid 7 (socklab)"])
    writer.write(2.5, DATA, comment="\x1b[31m" + "é" * 600, link_type=LINKTYPE_RAW)
    _format, frames = _read(buffer.getvalue())
    assert [(f.time, f.link_type) for f in frames] == [
        (1.25, LINKTYPE_ETHERNET),
        (2.5, LINKTYPE_RAW),
    ]
    assert frames[0].comment == "pid 7 (socklab)"
    comment = frames[1].comment
    # Cut to 1024 bytes on a character boundary: no broken UTF-8 in the file.
    assert comment is not None and comment.startswith("\x1b[31m") and "\ufffd" not in comment
    assert len(comment.encode()) <= 1024
    assert writer.packets_written == 2


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "shorter than a pcap header"),
        (b"GIF89a" + b"\0" * 30, "unknown magic number"),
        (_shb("<")[:-4] + b"\xff\0\0\0", "length fields disagree"),
        (_shb("<")[:8] + b"\0\0\0\0" + _shb("<")[12:], "byte-order magic"),
        (_shb("<") + _epb("<", 0, 1, SYN), "names interface 0"),
        (_shb("<") + struct.pack("<II", 6, 0xFFFFFFF0), "larger than socklab reads"),
        (_shb("<") + struct.pack("<II", 0x0BAD, 0xFFFFFFF0), "cut short"),
        (_shb("<") + struct.pack("<II", 6, 13) + b"\0" * 8, "impossible length"),
        (_block("<", 1, b"\0" * 20), "unknown magic number"),  # pcapng without its SHB
        (
            encode_file_header(LINKTYPE_RAW) + struct.pack("<IIII", 0, 0, 0xFFFFFFFF, 1),
            "larger than any capture",
        ),
    ],
)
def test_broken_files_name_the_fault(data: bytes, reason: str) -> None:
    with pytest.raises(PcapFormatError, match=reason) as caught:
        _read(data)
    assert 0 <= caught.value.offset <= len(data)


def test_epb_whose_packet_runs_past_its_block() -> None:
    good = _shb("<") + _idb("<", LINKTYPE_RAW) + _epb("<", 0, 1, SYN)
    epb_start = len(_shb("<") + _idb("<", LINKTYPE_RAW))
    bad = bytearray(good)
    struct.pack_into("<I", bad, epb_start + 20, len(SYN) + 64)  # captured length
    with pytest.raises(PcapFormatError, match="runs past the end of its block") as caught:
        _read(bytes(bad))
    assert caught.value.offset == epb_start
    struct.pack_into("<I", bad, epb_start + 20, MAX_FRAME_BYTES + 1)
    with pytest.raises(PcapFormatError, match="larger than any capture"):
        _read(bytes(bad))


def _survives(data: bytes) -> None:
    """Either frames or PcapFormatError; every frame of a known link type decodes or is None,
    and what decodes goes through the ladder's and the list view's connection state."""
    ladder, numbering = LadderBuilder(), SequenceNumbering()
    try:
        _format, frames = read_capture(io.BytesIO(data))
        for frame in frames:
            assert len(frame.data) <= MAX_FRAME_BYTES
            if frame.link_type in SUPPORTED_LINK_TYPES:
                packet = decode_frame(frame.link_type, frame.data, frame.time)
                if packet is not None:
                    ladder.add(packet)
                    if packet.proto == "tcp":
                        numbering.number(packet)
    except PcapFormatError as error:
        assert 0 <= error.offset <= len(data)


def test_every_truncation_and_random_mutations_end_in_a_format_error_or_frames() -> None:
    classic = (
        encode_file_header(LINKTYPE_LINUX_SLL2)
        + encode_record(1.0, _sll2(SYN))
        + encode_record(2.0, _sll2(DATA))
    )
    samples = [sample_pcapng(), classic]
    for sample in samples:
        for end in range(len(sample)):
            _survives(sample[:end])
    rng = random.Random(18)
    for _round in range(3000):
        data = bytearray(rng.choice(samples))
        for _flip in range(rng.randint(1, 4)):
            position = rng.randrange(len(data))
            data[position] = rng.choice((0, 0xFF, rng.randrange(256)))
        _survives(bytes(data))


# --- socklab capture -r on crafted files ----------------------------------------------------------


def test_broken_and_hostile_files_are_one_line_errors(tmp_path: Path) -> None:
    junk = tmp_path / "notes.pcap"
    junk.write_bytes(b"these are my notes, not a capture\n")
    result = run_socklab(["capture", "-r", str(junk)])
    assert result.returncode == ExitStatus.USAGE and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(
        f"socklab capture: cannot read {junk} at byte 0: unknown magic number"
    )
    assert "Traceback" not in result.stderr

    # A comment with terminal control bytes is shown escaped, never obeyed; then the file is cut.
    hostile = tmp_path / "hostile.pcapng"
    evil = _option("<", 1, b"\x1b]0;owned\x07\x1b[2J")
    body = _shb("<") + _idb("<", LINKTYPE_RAW) + _epb("<", 0, 10**6, DATA, evil)
    hostile.write_bytes(body + body[: len(body) // 2])
    result = run_socklab(["capture", "-r", str(hostile)])
    assert "\x1b" not in result.stdout
    assert '· comment "\\x1b]0;owned\\x07\\x1b[2J"' in result.stdout
    assert result.returncode == ExitStatus.USAGE and len(result.stderr.splitlines()) == 1
    # The copy's section and interface are whole; its packet block is cut: that is the offset.
    cut_block = len(body) + len(_shb("<") + _idb("<", LINKTYPE_RAW))
    assert re.match(
        rf"socklab capture: cannot read {hostile} at byte {cut_block}: .*The 1 packet before it was read",
        result.stderr,
    )

    # Stamps no clock can show (2^64 - 1 seconds; before 1970) are shown as such, not a crash.
    odd_times = tmp_path / "times.pcapng"
    odd_times.write_bytes(
        _shb("<")
        + _idb("<", LINKTYPE_RAW, _option("<", 9, b"\x00"))
        + _epb("<", 0, 2**64 - 1, DATA)
        + _idb("<", LINKTYPE_RAW, _option("<", 14, struct.pack("<q", -(10**15))))
        + _epb("<", 1, 0, DATA)
    )
    result = run_socklab(["capture", "-r", str(odd_times)])
    assert result.returncode == 0 and result.stderr == ""
    assert [line[:16] for line in result.stdout.splitlines()[1:3]] == ["??:??:??.000000 "] * 2

    missing = run_socklab(["capture", "-r", str(tmp_path / "nope.pcap")])
    assert missing.returncode == ExitStatus.USAGE
    assert missing.stderr.startswith("socklab capture: cannot read the capture file ")
    same = run_socklab(["capture", "-r", str(junk), "-w", str(junk)])
    assert same.returncode == ExitStatus.USAGE and "name the same file" in same.stderr
    assert junk.read_bytes().startswith(b"these are my notes")
    for copy in (tmp_path / "times.pcap", tmp_path / "times-copy.pcapng"):  # stored, clamped
        written = run_socklab(["capture", "-r", str(odd_times), "-w", str(copy)])
        assert written.returncode == 0 and f"2 written to {copy}" in written.stdout, written.stderr
    unwritable = run_socklab(["capture", "-r", str(odd_times), "-w", "/nonexistent-dir/x.pcap"])
    assert unwritable.returncode == ExitStatus.USAGE and unwritable.stdout == ""
    assert unwritable.stderr.startswith(
        "socklab capture: cannot write the capture file /nonexistent-dir/"
    )
    live_only = run_socklab(["capture", "-r", str(junk), "--duration", "1"])
    assert live_only.returncode == ExitStatus.USAGE and "--duration" in live_only.stderr


def test_unknown_link_types_are_counted_and_mixed_ones_need_pcapng(tmp_path: Path) -> None:
    mixed = tmp_path / "mixed.pcapng"
    mixed.write_bytes(
        _shb("<")
        + _idb("<", LINKTYPE_ETHERNET)
        + _idb("<", LINKTYPE_RAW)
        + _idb("<", 147)  # LINKTYPE_USER0: nothing socklab decodes
        + _epb("<", 0, 1, build_ethernet(SYN))
        + _epb("<", 1, 2, DATA)
        + _epb("<", 2, 3, b"user data")
    )
    result = run_socklab(["capture", "-r", str(mixed)])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        f"3 packets read from {mixed}, 2 TCP/UDP packets matched. 1 packet skipped: link type "
        "147 is not one socklab decodes (Ethernet, raw IP, BSD loopback, Linux cooked)."
    )
    out = tmp_path / "out.pcapng"
    result = run_socklab(["capture", "-r", str(mixed), "-w", str(out)])
    assert result.returncode == 0 and f"; 2 written to {out}. 1 packet skipped" in result.stdout
    _format, frames = _read(out.read_bytes())
    assert [frame.link_type for frame in frames] == [LINKTYPE_ETHERNET, LINKTYPE_RAW]
    classic = tmp_path / "out.pcap"
    result = run_socklab(["capture", "-r", str(mixed), "-w", str(classic)])
    assert result.returncode == ExitStatus.USAGE
    assert "a classic pcap file holds one link type" in result.stderr
    assert "write a .pcapng file instead" in result.stderr


def test_standard_input_is_read_with_dash() -> None:
    data = encode_file_header(LINKTYPE_LINUX_SLL2) + encode_record(1.0, _sll2(DATA))
    result = subprocess.run(
        [*socklab_command(), "capture", "-r", "-", "--follow"],
        input=data,
        capture_output=True,
        timeout=30,
        env=child_environment(),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "Reading - (pcap; tcp)."
    assert "    U:a\\n" in lines
