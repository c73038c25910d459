"""What a benchmark sends and what it must get back: the workload and the compare scenarios.

Every expected reply is computed once, before the run, by the protocol core itself
(`handle_request` / `handle_datagram` and the framer's `encode`), so the load loop compares whole
byte strings (`reply == expected`): one comparison per reply verifies the conversion, the
framing and that no extra byte arrived.
"""

from __future__ import annotations

from dataclasses import dataclass

from socklab.errors import UsageError
from socklab.i18n import _, format_count, format_number
from socklab.protocol.converter import (
    GREETING,
    UPPER,
    handle_request,
)
from socklab.protocol.framing import describe_framing, make_framer
from socklab.protocol.limits import DEFAULT_MAX_MESSAGE_BYTES, MAX_UDP_PAYLOAD_BYTES

# The payload alphabet: lower-case ASCII, so every reply differs from its request and a server
# that echoes instead of converting is caught at once.
PAYLOAD_ALPHABET = b"abcdefghijklmnopqrstuvwxyz"
# A UDP reply not seen within this time counts as lost and its slot sends a new request (the
# C load generator of the reference benchmark uses the same 200 ms).
UDP_REPLY_TIMEOUT_S = 0.2


@dataclass(frozen=True, slots=True)
class Workload:
    transport: str = "tcp"  # "tcp" or "udp"
    connections: int = 100  # TCP: active connections; UDP: outstanding datagrams
    size: int = 64  # bytes of text per request
    duration_s: float = 5.0
    warmup_s: float = 1.0
    idle: int = 0  # extra TCP connections that only read the greeting and stay silent
    pipeline: int = 1  # TCP: requests sent at once per connection before waiting
    framing: str = "line"

    def check(self) -> None:
        """Raise UsageError for a combination that cannot run."""
        if self.transport not in ("tcp", "udp"):
            raise UsageError(f"unknown transport {self.transport!r}")
        if self.transport == "udp":
            if self.idle:
                raise UsageError(_("--idle applies to TCP only (UDP has no connections)"))
            if self.pipeline != 1:
                raise UsageError(_("--pipeline applies to TCP only"))
            if self.size + 32 > MAX_UDP_PAYLOAD_BYTES:
                raise UsageError(
                    _(
                        "--size {size} does not fit in one UDP datagram (at most {limit} bytes of text)"
                    ).format(
                        size=format_number(self.size),
                        limit=format_number(MAX_UDP_PAYLOAD_BYTES - 32),
                    )
                )
        elif self.size + len(UPPER) > DEFAULT_MAX_MESSAGE_BYTES:
            raise UsageError(
                _(
                    "--size {size} exceeds the server's default message limit ({limit} bytes of text)"
                ).format(
                    size=format_number(self.size),
                    limit=format_number(DEFAULT_MAX_MESSAGE_BYTES - len(UPPER)),
                )
            )

    @property
    def label(self) -> str:
        if self.transport == "udp":
            return f"udp{self.connections}_{self.size}"
        name = f"c{self.connections}_{self.size}"
        if self.idle:
            name += f"_idle{self.idle}"
        if self.pipeline > 1:
            name += f"_pipe{self.pipeline}"
        return name


def describe_workload(workload: Workload) -> str:
    """`TCP line framing, 100 connections, 64 B, 10,000 idle`: a workload's shape, in the user's
    language, with its numbers in the language's format."""
    if workload.transport == "udp":
        return _("UDP, {n} outstanding, {size} B").format(
            n=format_number(workload.connections), size=format_number(workload.size)
        )
    shape = _("TCP {framing}, {connections}, {size} B").format(
        framing=describe_framing(workload.framing),
        connections=format_count("{count} connection", "{count} connections", workload.connections),
        size=format_number(workload.size),
    )
    if workload.idle:
        shape += _(", {idle} idle").format(idle=format_number(workload.idle))
    if workload.pipeline > 1:
        shape += _(", pipeline {k}").format(k=workload.pipeline)
    return shape


def payload(size: int) -> bytes:
    """`size` bytes of lower-case text."""
    repeats = size // len(PAYLOAD_ALPHABET) + 1
    return (PAYLOAD_ALPHABET * repeats)[:size]


@dataclass(frozen=True, slots=True)
class StreamExchange:
    """The bytes of one closed-loop round on a TCP connection, framed."""

    greeting: bytes
    request: bytes  # `pipeline` framed requests, sent in one write
    reply: bytes  # the `pipeline` framed replies expected, in order
    pipeline: int


def stream_exchange(workload: Workload) -> StreamExchange:
    framer = make_framer(workload.framing, DEFAULT_MAX_MESSAGE_BYTES)
    message = UPPER + payload(workload.size)
    reply = handle_request(message)
    assert isinstance(reply, bytes)
    return StreamExchange(
        greeting=framer.encode(GREETING),
        request=framer.encode(message) * workload.pipeline,
        reply=framer.encode(reply) * workload.pipeline,
        pipeline=workload.pipeline,
    )


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named workload of `bench --compare`, the same as the reference benchmark's."""

    name: str
    transport: str
    connections: int
    size: int
    idle: int = 0

    def workload(self, *, duration_s: float, warmup_s: float, framing: str) -> Workload:
        return Workload(
            transport=self.transport,
            connections=self.connections,
            size=self.size,
            duration_s=duration_s,
            warmup_s=warmup_s,
            idle=self.idle,
            framing=framing,
        )


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario("c1_64", "tcp", 1, 64),
        Scenario("c100_64", "tcp", 100, 64),
        Scenario("c100_1k", "tcp", 100, 1024),
        Scenario("c100_idle10k", "tcp", 100, 64, idle=10_000),
        Scenario("udp32_64", "udp", 32, 64),
    )
}
