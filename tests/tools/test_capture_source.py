"""The Linux packet source on loopback, both ways of reading: the TPACKET_V3 ring and recvmsg().

Runs as root (CI does); a UDP datagram sent to ourselves must come back decoded, once (the
outgoing copy on `lo` is skipped), with the kernel's timestamp, through the kernel filter.
"""

from __future__ import annotations

import socket
import time

import pytest

from socklab.tools.capture.linux import PacketSocketSource
from socklab.tools.capture.packets import LINKTYPE_ETHERNET, decode_frame
from socklab.tools.capture.selection import PacketSelection, build_bpf_program


@pytest.mark.parametrize("use_ring", [True, False], ids=["ring", "recvmsg"])
def test_loopback_datagram_is_captured_once(use_ring: bool) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        port = receiver.getsockname()[1]
        with PacketSocketSource(
            "lo", snaplen=65535, buffer_bytes=4 << 20, use_ring=use_ring
        ) as source:
            assert source.uses_ring is use_ring and source.link_type == LINKTYPE_ETHERNET
            program = build_bpf_program(
                # UDP only: another program's TCP connection may use the same port number.
                source.link_type,
                PacketSelection(frozenset({"udp"}), port),
                65535,
            )
            assert program is not None
            source.set_kernel_filter(program)
            before = time.time()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                for number in range(3):
                    sender.sendto(b"U:%d" % number, ("127.0.0.1", port))
            frames = []
            deadline = time.monotonic() + 10
            while len(frames) < 3 and time.monotonic() < deadline:
                frames += source.receive_batch(0.2)
            # Nothing more arrives: each datagram was seen once, not twice.
            frames += source.receive_batch(0.3)
            received, dropped = source.statistics()
    packets = [decode_frame(source.link_type, frame.data, frame.time) for frame in frames]
    assert [p.payload for p in packets if p is not None] == [b"U:0", b"U:1", b"U:2"]
    assert all(p is not None and p.dst_port == port for p in packets)
    assert all(before - 1 < frame.time < time.time() + 1 for frame in frames)
    assert all(frame.original_length == len(frame.data) for frame in frames)
    assert dropped == 0 and received >= 3


@pytest.mark.parametrize("use_ring", [True, False], ids=["ring", "recvmsg"])
def test_frames_from_before_the_kernel_filter_are_not_delivered(use_ring: bool) -> None:
    # Packets the socket took before its filter came must not slip through: with the ring they
    # sit in the block the kernel is still filling, which it hands over later.
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        receiver.bind(("127.0.0.1", 0))
        other.bind(("127.0.0.1", 0))
        port = receiver.getsockname()[1]
        with PacketSocketSource(
            "lo", snaplen=65535, buffer_bytes=4 << 20, use_ring=use_ring
        ) as source:
            for number in range(5):
                sender.sendto(b"noise %d" % number, other.getsockname())
            program = build_bpf_program(
                source.link_type, PacketSelection(frozenset({"udp"}), port), 65535
            )
            assert program is not None
            source.set_kernel_filter(program)
            sender.sendto(b"U:wanted", ("127.0.0.1", port))
            frames = []
            deadline = time.monotonic() + 10
            while not frames and time.monotonic() < deadline:
                frames += source.receive_batch(0.2)
            frames += source.receive_batch(0.3)
    packets = [decode_frame(source.link_type, frame.data, frame.time) for frame in frames]
    assert [p.payload for p in packets if p is not None] == [b"U:wanted"]
