"""Linux packet source: an AF_PACKET raw socket bound to one interface (packet(7)).

Strategy: one `SOCK_RAW` packet socket for all protocols (ETH_P_ALL), bound to the interface,
with an optional classic BPF program (SO_ATTACH_FILTER) so the kernel hands us only the
packets asked for. Packets arrive through a TPACKET_V3 ring (PACKET_RX_RING, the memory-mapped
receive ring tcpdump uses): the kernel writes many packets into a block of shared memory and
hands over the whole block, so there is no system call per packet — one recvmsg() per packet
cost about as much as decoding it. The ring is the buffer: 32 MiB by default, so bursts wait
instead of being dropped. Where the ring cannot be set up, packets are read one recvmsg() at a
time from a socket buffer enlarged the same way (SO_RCVBUFFORCE as root, which may exceed
net.core.rmem_max), with the kernel's timestamp (SO_TIMESTAMPNS). The kernel counts what it had
to drop in PACKET_STATISTICS; reading the counters resets them, so we sum.

On `lo` every packet passes the capture point twice, once leaving and once arriving; the
outgoing copy (PACKET_OUTGOING) is skipped, so each packet is shown once: by the kernel where
it has PACKET_IGNORE_OUTGOING (Linux 4.20), else after reading.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import select
import socket
import struct
import time
from typing import Final, NamedTuple

from socklab.errors import PermissionDeniedError, UsageError
from socklab.i18n import _
from socklab.runtimes.oserrors import translated_oserrors
from socklab.tools.capture.packets import LINKTYPE_ETHERNET, LINKTYPE_RAW
from socklab.tools.capture.selection import run_bpf

# <linux/if_ether.h>, <linux/socket.h>, <asm-generic/socket.h>, <linux/if_packet.h>
ETH_P_ALL: Final = 0x0003
SOL_PACKET: Final = 263
PACKET_STATISTICS: Final = 6
SO_RCVBUFFORCE: Final = 33
SO_TIMESTAMPNS: Final = 35
SO_ATTACH_FILTER: Final = 26
PACKET_OUTGOING: Final = 4
PACKET_IGNORE_OUTGOING: Final = 23  # Linux 4.20+
PACKET_VERSION: Final = 10
PACKET_RX_RING: Final = 5
TPACKET_V3: Final = 2
TP_STATUS_KERNEL: Final = 0
TP_STATUS_USER: Final = 1
# <linux/if_arp.h>: hardware types and the pcap link type their frames have
ARPHRD_ETHER: Final = 1
ARPHRD_LOOPBACK: Final = 772
ARPHRD_NONE: Final = 0xFFFE  # tun devices, WireGuard: bare IP
ARPHRD_RAWIP: Final = 519
_LINK_TYPES: Final = {
    ARPHRD_ETHER: LINKTYPE_ETHERNET,
    ARPHRD_LOOPBACK: LINKTYPE_ETHERNET,
    ARPHRD_NONE: LINKTYPE_RAW,
    ARPHRD_RAWIP: LINKTYPE_RAW,
}
# 32 MiB of kernel buffer: at ~1 KiB of memory per small loopback packet (skb overhead included)
# that holds ~30,000 packets, over half a second of a 50,000 packets/s stream.
DEFAULT_BUFFER_BYTES: Final = 32 << 20
MAX_BATCH: Final = 512  # frames taken per wakeup before the caller gets control back
# The ring: blocks of 1 MiB; a block is handed to us when full or after RING_BLOCK_TIMEOUT_MS,
# so a quiet capture still shows each packet within a fraction of a second.
RING_BLOCK_BYTES: Final = 1 << 20
RING_FRAME_BYTES: Final = 2048  # only checked by the kernel for TPACKET_V3; must divide a block
RING_BLOCK_TIMEOUT_MS: Final = 20
# struct tpacket_req3; the block descriptor (tpacket_block_desc + tpacket_hdr_v1) fields we read:
# block_status at 8, num_pkts at 12, offset_to_first_pkt at 16; struct tpacket3_hdr: next_offset,
# sec, nsec, snaplen, len, status (u32 each), mac offset (u16); sockaddr_ll's pkttype follows the
# header at TPACKET_ALIGN(sizeof(tpacket3_hdr)) = 48, +10.
_REQ3 = struct.Struct("@IIIIIII")
_U32 = struct.Struct("@I")
_BLOCK_COUNTS = struct.Struct("@II")  # num_pkts, offset_to_first_pkt
_BLOCK_STATUS_OFFSET: Final = 8
_PACKET_HEAD = struct.Struct("@IIIIIIH")
_PKTTYPE_OFFSET: Final = 58
_TIMESPEC = struct.Struct("@qq")
_CMSG_SPACE: Final = socket.CMSG_SPACE(_TIMESPEC.size)


class Frame(NamedTuple):
    """One captured frame; a tuple, so a list of them is what PcapWriter.write_many takes."""

    time: float
    data: bytes
    original_length: int


class PacketSocketSource:
    """Frames from one interface. Use as a context manager; `receive_batch` until done."""

    def __init__(
        self,
        interface: str,
        *,
        snaplen: int,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        use_ring: bool = True,
    ) -> None:
        self.interface = interface
        self.snaplen = snaplen
        self.kernel_received = 0
        self.kernel_dropped = 0
        self._is_loopback = False
        self._ring: _Ring | None = None
        # Ring frames stamped up to this time may predate the kernel filter: checked here.
        self._check_until: float | None = None
        self._program: list[tuple[int, int, int, int]] = []
        with translated_oserrors():
            try:
                self._sock = socket.socket(
                    socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)
                )
            except PermissionError as exc:
                raise PermissionDeniedError(
                    _("capturing packets needs root or the CAP_NET_RAW capability")
                ) from exc
        try:
            if use_ring:
                self._ring = _Ring.maybe_open(self._sock, buffer_bytes)
            if self._ring is not None:
                self.buffer_bytes = self._ring.size
            else:
                self.buffer_bytes = self._enlarge_buffer(buffer_bytes)
                self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            self._bind(interface)
            self.link_type = self._link_type()
            self.discard_queued()
        except BaseException:
            self.close()
            raise

    @property
    def uses_ring(self) -> bool:
        return self._ring is not None

    def _enlarge_buffer(self, size: int) -> int:
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
        except PermissionError:
            # Without CAP_NET_ADMIN the buffer is capped at net.core.rmem_max.
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        # The kernel doubles the value for its bookkeeping (socket(7)); report what we asked for.
        return int(self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)) // 2

    def _bind(self, interface: str) -> None:
        with translated_oserrors():
            try:
                self._sock.bind((interface, ETH_P_ALL))
            except OSError as exc:
                if exc.errno in (errno.ENODEV, errno.ENXIO):
                    names = ", ".join(name for _index, name in socket.if_nameindex())
                    raise UsageError(
                        _("there is no network interface '{name}' (interfaces: {names})").format(
                            name=interface, names=names
                        )
                    ) from exc
                raise

    def _link_type(self) -> int:
        hardware_type = int(self._sock.getsockname()[3])
        self._is_loopback = hardware_type == ARPHRD_LOOPBACK
        if self._is_loopback:
            # Let the kernel skip the outgoing copies (half of all loopback traffic) before
            # queueing them; older kernels lack the option and we skip them after reading.
            with contextlib.suppress(OSError):
                self._sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        try:
            return _LINK_TYPES[hardware_type]
        except KeyError:
            raise UsageError(
                _(
                    "interface '{name}' has hardware type {number}, whose frames socklab cannot decode"
                ).format(name=self.interface, number=hardware_type)
            ) from None

    def set_kernel_filter(self, program: list[tuple[int, int, int, int]]) -> None:
        """Let the kernel drop what `program` rejects; packets queued before it are discarded."""
        attach_filter(self._sock, program)
        self.discard_queued()
        if self._ring is not None:
            # The block the kernel was filling meanwhile keeps the frames it took before the
            # filter, and the ring hands it over later: filter those frames here, as libpcap
            # does for such blocks (its blocks_to_filter_in_userland).
            self._check_until = time.time()
            self._program = program

    def _without_frames_from_before_the_filter(self, frames: list[Frame]) -> list[Frame]:
        until = self._check_until
        assert until is not None
        if frames[-1].time > until:
            self._check_until = None  # blocks come in order: later ones are all filtered
        program = self._program
        return [f for f in frames if f.time > until or run_bpf(program, f.data) > 0]

    def discard_queued(self) -> None:
        """Drop what is queued: before bind() the socket received from every interface."""
        self._sock.setblocking(False)
        if self._ring is not None:
            self._ring.release_all()
        else:
            while True:
                try:
                    self._sock.recv(65536)
                except BlockingIOError:
                    break
        # Count from here: reading the statistics resets the kernel's counters.
        self._read_statistics()
        self.kernel_received = self.kernel_dropped = 0

    def fileno(self) -> int:
        return self._sock.fileno()

    def receive_batch(self, timeout_s: float) -> list[Frame]:
        """The next frames (a ring block, or up to MAX_BATCH); waits at most `timeout_s`."""
        if self._ring is not None:
            block = self._ring.receive_block(
                timeout_s, self.snaplen, skip_outgoing=self._is_loopback
            )
            if self._check_until is not None and block:
                return self._without_frames_from_before_the_filter(block)
            return block
        ready, _writable, _errors = select.select([self._sock], [], [], timeout_s)
        if not ready:
            return []
        frames: list[Frame] = []
        recvmsg = self._sock.recvmsg
        snaplen = self.snaplen
        for _attempt in range(MAX_BATCH):
            try:
                data, ancillary, _flags, address = recvmsg(snaplen, _CMSG_SPACE)
            except BlockingIOError:
                break
            if address[2] == PACKET_OUTGOING and self._is_loopback:
                continue
            stamp = 0.0
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds, nanoseconds = _TIMESPEC.unpack_from(value)
                    stamp = seconds + nanoseconds / 1e9
            frames.append(Frame(stamp, data, len(data)))
        return frames

    def blocks_waiting(self) -> tuple[int, int]:
        """(ring blocks full and waiting for us, blocks in the ring); (0, 0) without a ring.

        How far the reader is behind the kernel: the capture loop stops rendering lines while
        the ring fills up, so the display never makes the kernel drop packets.
        """
        if self._ring is None:
            return 0, 0
        return self._ring.blocks_waiting(), self._ring.block_count

    def _read_statistics(self) -> None:
        # struct tpacket_stats (v1/v2) or tpacket_stats_v3 (one more counter): both begin alike.
        size = 12 if self._ring is not None else 8
        raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, size)
        received, dropped = struct.unpack_from("@II", raw)
        self.kernel_received += received
        self.kernel_dropped += dropped

    def statistics(self) -> tuple[int, int]:
        """(packets the kernel queued for us, packets it dropped) since the bind."""
        self._read_statistics()
        return self.kernel_received, self.kernel_dropped

    def close(self) -> None:
        if self._ring is not None:
            self._ring.close()
            self._ring = None
        self._sock.close()

    def __enter__(self) -> PacketSocketSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def attach_filter(sock: socket.socket, program: list[tuple[int, int, int, int]]) -> None:
    """Attach a classic BPF program (struct sock_fprog) to `sock` (socket(7) SO_ATTACH_FILTER)."""
    import ctypes

    instructions = b"".join(struct.pack("@HBBI", *insn) for insn in program)
    buffer = ctypes.create_string_buffer(instructions)
    fprog = struct.pack("@HL", len(program), ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


class _Ring:
    """A TPACKET_V3 receive ring (packet(7), Documentation/networking/packet_mmap.rst).

    Blocks are taken in order: a block whose status has TP_STATUS_USER belongs to us until we
    write TP_STATUS_KERNEL back. Call order: maybe_open() (before bind) -> receive_block()* ->
    close().
    """

    def __init__(self, sock: socket.socket, block_bytes: int, block_count: int) -> None:
        self._sock = sock
        self.block_bytes = block_bytes
        self.block_count = block_count
        self.size = block_bytes * block_count
        self._map = mmap.mmap(
            sock.fileno(), self.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE
        )
        self._next_block = 0
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN | select.POLLERR)

    @classmethod
    def maybe_open(cls, sock: socket.socket, buffer_bytes: int) -> _Ring | None:
        """The ring, or None where the kernel refuses one (then recvmsg() is used)."""
        block_count = max(2, buffer_bytes // RING_BLOCK_BYTES)
        request = _REQ3.pack(
            RING_BLOCK_BYTES,
            block_count,
            RING_FRAME_BYTES,
            RING_BLOCK_BYTES // RING_FRAME_BYTES * block_count,
            RING_BLOCK_TIMEOUT_MS,
            0,  # no private area per block
            0,  # no features (no rxhash)
        )
        try:
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            sock.setsockopt(SOL_PACKET, PACKET_RX_RING, request)
            return cls(sock, RING_BLOCK_BYTES, block_count)
        except OSError:
            with contextlib.suppress(OSError):
                sock.setsockopt(SOL_PACKET, PACKET_RX_RING, bytes(_REQ3.size))  # tear down
            return None

    def _block_is_ours(self, offset: int) -> bool:
        (status,) = _U32.unpack_from(self._map, offset + _BLOCK_STATUS_OFFSET)
        return bool(status & TP_STATUS_USER)

    def receive_block(self, timeout_s: float, snaplen: int, *, skip_outgoing: bool) -> list[Frame]:
        offset = self._next_block * self.block_bytes
        ring = self._map
        if not self._block_is_ours(offset):
            self._poll.poll(max(0, int(timeout_s * 1000)))
            if not self._block_is_ours(offset):
                return []
        count, first = _BLOCK_COUNTS.unpack_from(ring, offset + _BLOCK_STATUS_OFFSET + 4)
        frames: list[Frame] = []
        position = offset + first
        unpack = _PACKET_HEAD.unpack_from
        for _index in range(count):
            next_offset, seconds, nanoseconds, captured, length, _pstatus, mac = unpack(
                ring, position
            )
            if not (skip_outgoing and ring[position + _PKTTYPE_OFFSET] == PACKET_OUTGOING):
                start = position + mac
                data = ring[start : start + min(captured, snaplen)]
                frames.append(Frame(seconds + nanoseconds / 1e9, data, length))
            position += next_offset
        _U32.pack_into(ring, offset + _BLOCK_STATUS_OFFSET, TP_STATUS_KERNEL)
        self._next_block = (self._next_block + 1) % self.block_count
        return frames

    def blocks_waiting(self) -> int:
        waiting = 0
        index = self._next_block
        while waiting < self.block_count and self._block_is_ours(index * self.block_bytes):
            waiting += 1
            index = (index + 1) % self.block_count
        return waiting

    def release_all(self) -> None:
        """Give every block we hold back to the kernel, unread."""
        for _index in range(self.block_count):
            offset = self._next_block * self.block_bytes
            if not self._block_is_ours(offset):
                return
            _U32.pack_into(self._map, offset + _BLOCK_STATUS_OFFSET, TP_STATUS_KERNEL)
            self._next_block = (self._next_block + 1) % self.block_count

    def close(self) -> None:
        self._map.close()
