"""Linux packet source: an AF_PACKET raw socket bound to one interface (packet(7)).

Strategy: one `SOCK_RAW` packet socket for all protocols (ETH_P_ALL), bound to the interface,
with a large receive buffer (SO_RCVBUFFORCE as root, which may exceed net.core.rmem_max) so
bursts wait in the kernel instead of being dropped, and an optional classic BPF program
(SO_ATTACH_FILTER) so the kernel hands us only the packets asked for. Frames are read in batches:
block in poll() for the first, then take whatever else is queued without blocking, so one wakeup
serves many packets. Each frame's kernel timestamp comes with it (SO_TIMESTAMPNS). The kernel
counts what it had to drop in PACKET_STATISTICS; reading the counters resets them, so we sum.

On `lo` every packet passes the capture point twice, once leaving and once arriving; the
outgoing copy (PACKET_OUTGOING) is skipped, so each packet is shown once: by the kernel where
it has PACKET_IGNORE_OUTGOING (Linux 4.20), else after reading.
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket
import struct
from dataclasses import dataclass
from typing import Final

from socklab.errors import PermissionDeniedError, UsageError, translate_oserror
from socklab.i18n import _
from socklab.tools.capture.packets import LINKTYPE_ETHERNET, LINKTYPE_RAW

# <linux/if_ether.h>, <linux/socket.h>, <asm-generic/socket.h>, <linux/if_packet.h>
ETH_P_ALL: Final = 0x0003
SOL_PACKET: Final = 263
PACKET_STATISTICS: Final = 6
SO_RCVBUFFORCE: Final = 33
SO_TIMESTAMPNS: Final = 35
SO_ATTACH_FILTER: Final = 26
PACKET_OUTGOING: Final = 4
PACKET_IGNORE_OUTGOING: Final = 23  # Linux 4.20+
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
_TIMESPEC = struct.Struct("@qq")
_CMSG_SPACE: Final = socket.CMSG_SPACE(_TIMESPEC.size)


@dataclass(frozen=True, slots=True)
class Frame:
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
    ) -> None:
        self.interface = interface
        self.snaplen = snaplen
        self.kernel_received = 0
        self.kernel_dropped = 0
        self._is_loopback = False
        try:
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except PermissionError as exc:
            raise PermissionDeniedError(
                _("capturing packets needs root or the CAP_NET_RAW capability")
            ) from exc
        except OSError as exc:
            raise translate_oserror(exc) from exc
        try:
            self.buffer_bytes = self._enlarge_buffer(buffer_bytes)
            self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            self._bind(interface)
            self.link_type = self._link_type()
            self.discard_queued()
        except BaseException:
            self._sock.close()
            raise

    def _enlarge_buffer(self, size: int) -> int:
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
        except PermissionError:
            # Without CAP_NET_ADMIN the buffer is capped at net.core.rmem_max.
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        # The kernel doubles the value for its bookkeeping (socket(7)); report what we asked for.
        return int(self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)) // 2

    def _bind(self, interface: str) -> None:
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
            raise translate_oserror(exc) from exc

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

    def discard_queued(self) -> None:
        # Between socket() and bind() the socket received from every interface: drop those.
        self._sock.setblocking(False)
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
        """Up to MAX_BATCH frames; waits at most `timeout_s` for the first one."""
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

    def _read_statistics(self) -> None:
        raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        received, dropped = struct.unpack("@II", raw)
        self.kernel_received += received
        self.kernel_dropped += dropped

    def statistics(self) -> tuple[int, int]:
        """(packets the kernel queued for us, packets it dropped) since the bind."""
        self._read_statistics()
        return self.kernel_received, self.kernel_dropped

    def close(self) -> None:
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
