"""Which packets to keep (--tcp/--udp/--port): a user-space test and the same rule as kernel BPF.

Strategy: the rule is checked twice. In the kernel, a classic BPF program (the language of
`tcpdump -d`, see bpf(4) and Documentation/networking/filter.rst) drops everything else before
it is copied to us, so busy unrelated traffic costs no Python time and cannot fill our buffer.
In user space, `PacketSelection.matches` decides again on the decoded packet: it is the
reference, and the only filter on systems without BPF. The program is built by a small
assembler with labels, so jump offsets are computed, never counted by hand. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from socklab.tools.capture.packets import (
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
    LINKTYPE_ETHERNET,
    LINKTYPE_RAW,
    Packet,
)

Instruction = tuple[int, int, int, int]  # struct sock_filter: code, jt, jf, k

# Opcodes (<linux/filter.h>, <linux/bpf_common.h>)
_LD_H_ABS: Final = 0x28
_LD_B_ABS: Final = 0x30
_LD_H_IND: Final = 0x48
_LDX_B_MSH: Final = 0xB1  # X = 4 * (packet[k] & 0x0F): the IPv4 header length
_JEQ_K: Final = 0x15
_JSET_K: Final = 0x45
_RET_K: Final = 0x06


@dataclass(frozen=True, slots=True)
class PacketSelection:
    protocols: frozenset[str] = frozenset({"tcp", "udp"})
    port: int | None = None  # source or destination port
    more_ports: frozenset[int] = frozenset()  # further ports, any of them (socklab live --port ...)

    @property
    def ports(self) -> frozenset[int]:
        """Every selected port; empty means all."""
        return self.more_ports | {self.port} if self.port is not None else self.more_ports

    def matches(self, packet: Packet) -> bool:
        if packet.proto not in self.protocols:
            return False
        ports = self.ports
        return not ports or packet.src_port in ports or packet.dst_port in ports


class _Assembler:
    """Collects instructions whose jump targets are labels, then resolves them."""

    def __init__(self) -> None:
        self._code: list[tuple[int, str | int, str | int, int]] = []
        self._labels: dict[str, int] = {}

    def label(self, name: str) -> None:
        self._labels[name] = len(self._code)

    def op(self, code: int, k: int = 0) -> None:
        self._code.append((code, 0, 0, k))

    def jump(self, code: int, k: int, if_true: str | int, if_false: str | int) -> None:
        """A conditional jump; a target is a label or 0 for 'the next instruction'."""
        self._code.append((code, if_true, if_false, k))

    def assemble(self) -> list[Instruction]:
        program: list[Instruction] = []
        for index, (code, jt, jf, k) in enumerate(self._code):
            program.append((code, self._offset(index, jt), self._offset(index, jf), k))
        return program

    def _offset(self, index: int, target: str | int) -> int:
        if isinstance(target, int):
            return target
        offset = self._labels[target] - index - 1
        if not 0 <= offset <= 255:
            raise ValueError(f"BPF jump to {target} out of range")
        return offset


def build_bpf_program(
    link_type: int, selection: PacketSelection, accept_bytes: int
) -> list[Instruction] | None:
    """A kernel filter equivalent to `selection` (IPv4 and IPv6); None for link types without one.

    Built for the default selection (all TCP and UDP) too: ARP, ICMP and later fragments then
    never reach Python, and every frame read is one the capture keeps, so the loop can count
    and save frames without decoding them when the display falls behind.
    """
    if link_type == LINKTYPE_ETHERNET:
        link_bytes = 14
    elif link_type == LINKTYPE_RAW:
        link_bytes = 0
    else:
        return None
    protocols = sorted(
        {"tcp": IPPROTO_TCP, "udp": IPPROTO_UDP}[name] for name in selection.protocols
    )
    asm = _Assembler()
    if link_type == LINKTYPE_ETHERNET:
        asm.op(_LD_H_ABS, 12)  # EtherType
        asm.jump(_JEQ_K, ETHERTYPE_IPV4, "ipv4", 0)
        asm.jump(_JEQ_K, ETHERTYPE_IPV6, "ipv6", "drop")
    else:
        asm.op(_LD_B_ABS, 0)  # version nibble
        asm.jump(_JSET_K, 0x40, 0, "drop")  # 4 = 0100, 6 = 0110: bit 0x40 set for both
        asm.jump(_JSET_K, 0x20, "ipv6", "ipv4")  # only 6 has 0x20
    # IPv4: protocol at byte 9, fragment offset in bytes 6-7, ports after the variable header.
    asm.label("ipv4")
    asm.op(_LD_B_ABS, link_bytes + 9)
    _jump_if_protocol(asm, protocols, "ipv4_ports")
    asm.label("ipv4_ports")
    asm.op(_LD_H_ABS, link_bytes + 6)
    asm.jump(_JSET_K, 0x1FFF, "drop", 0)  # a later fragment has no ports
    ports = sorted(selection.ports)
    if not ports:
        asm.op(_RET_K, accept_bytes)
    else:
        asm.op(_LDX_B_MSH, link_bytes)
        asm.op(_LD_H_IND, link_bytes)  # source port at X + link
        _jump_if_port(asm, ports, otherwise=0)
        asm.op(_LD_H_IND, link_bytes + 2)  # destination port
        _jump_if_port(asm, ports, otherwise="drop")
    # IPv6: next header at byte 6, ports right after the 40-byte header (extension headers are
    # not walked here; the user-space check still sees such packets correctly if they pass).
    asm.label("ipv6")
    asm.op(_LD_B_ABS, link_bytes + 6)
    _jump_if_protocol(asm, protocols, "ipv6_ports")
    asm.label("ipv6_ports")
    if not ports:
        asm.op(_RET_K, accept_bytes)
    else:
        asm.op(_LD_H_ABS, link_bytes + 40)
        _jump_if_port(asm, ports, otherwise=0)
        asm.op(_LD_H_ABS, link_bytes + 42)
        _jump_if_port(asm, ports, otherwise="drop")
    asm.label("accept")
    asm.op(_RET_K, accept_bytes)
    asm.label("drop")
    asm.op(_RET_K, 0)
    return asm.assemble()


def _jump_if_port(asm: _Assembler, ports: list[int], *, otherwise: str | int) -> None:
    """Accept if the loaded port is one of `ports`; else fall through (0) or jump to `otherwise`."""
    for index, port in enumerate(ports):
        last = index == len(ports) - 1
        asm.jump(_JEQ_K, port, "accept", otherwise if last else 0)


def _jump_if_protocol(asm: _Assembler, protocols: list[int], target: str) -> None:
    for index, number in enumerate(protocols):
        last = index == len(protocols) - 1
        asm.jump(_JEQ_K, number, target, "drop" if last else 0)


def run_bpf(program: list[Instruction], packet: bytes) -> int:
    """A tiny interpreter for the instructions this module emits: bytes accepted (0 = drop).

    It lets tests check a program against crafted packets without a kernel, and reads out of
    range as the kernel does (the packet is dropped).
    """
    accumulator = index = 0
    pc = 0
    while pc < len(program):
        code, jt, jf, k = program[pc]
        pc += 1
        if code in (_LD_H_ABS, _LD_H_IND):
            at = k + (index if code == _LD_H_IND else 0)
            if at + 2 > len(packet):
                return 0
            accumulator = int.from_bytes(packet[at : at + 2], "big")
        elif code == _LD_B_ABS:
            if k >= len(packet):
                return 0
            accumulator = packet[k]
        elif code == _LDX_B_MSH:
            if k >= len(packet):
                return 0
            index = 4 * (packet[k] & 0x0F)
        elif code == _JEQ_K:
            pc += jt if accumulator == k else jf
        elif code == _JSET_K:
            pc += jt if accumulator & k else jf
        elif code == _RET_K:
            return k
        else:
            raise ValueError(f"unknown BPF opcode 0x{code:02X}")
    return 0
