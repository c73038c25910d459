"""The ladder view: each segment as an arrow between two ip:port columns, with the messages inside.

Strategy: the in-order bytes of each direction (from `streams`) go through the converter's own
`LineFramer`, the same code the server uses to cut its input, so the ladder shows message
boundaries exactly where the server finds them. Comparing the framer's partial-message state
before and after each segment tells whether a message began in an earlier segment, ended in this
one, or continues in a later one: the lesson that TCP carries a byte stream, not messages.
Each message is named with the converter's vocabulary (`handle_request` says what a request
asks; the greeting is recognised). UDP datagrams are one message each. Pure: packets in, steps out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from socklab.protocol.converter import (
    CLOSE,
    ERROR_PREFIX,
    GREETING,
    LOWER,
    UPPER,
    split_request_id,
)
from socklab.protocol.framing import FrameTooLong, TruncatedFrame
from socklab.protocol.framing.lines import LineFramer
from socklab.protocol.limits import DEFAULT_MAX_MESSAGE_BYTES
from socklab.tools.capture.packets import Packet, TcpFlags, describe_flags
from socklab.tools.capture.streams import ConnectionTracker, endpoints_key


class MessageKind(enum.Enum):
    GREETING = "greeting"  # the converter's welcome line
    UPPER_REQUEST = "upper"  # U:<text>
    LOWER_REQUEST = "lower"  # L:<text>
    CLOSE_REQUEST = "close"  # C:
    ERROR_REPLY = "error"  # E:<reason>
    REPLY = "reply"  # text the server sent back
    TEXT = "text"  # anything else a client sent (the hello message, for one)


class Fragment(enum.Enum):
    WHOLE = "whole"  # the message begins and ends in this segment
    END = "end"  # began in an earlier segment, ends here
    START = "start"  # begins here, continues in a later segment
    MIDDLE = "middle"  # neither begins nor ends here


@dataclass(frozen=True, slots=True)
class MessagePiece:
    text: bytes  # the part of the message carried by this segment (the whole message if WHOLE/END)
    kind: MessageKind
    fragment: Fragment
    ended_by_close: bool = False  # no delimiter: the sender's FIN ended it (the hello client)


@dataclass(frozen=True, slots=True)
class LadderStep:
    """One arrow of the ladder."""

    connection: int  # 1, 2, ... in the order connections appeared
    time: float
    proto: str
    sender: tuple[str, int]
    receiver: tuple[str, int]
    from_client: bool
    flags: str  # "SYN", "SYN+ACK", "PSH+ACK", "" for UDP
    relative_seq: int | None
    relative_ack: int | None
    payload_length: int
    pieces: tuple[MessagePiece, ...]
    retransmission: bool = False
    opens_connection: bool = False  # the first arrow of a connection: draw its header
    client: tuple[str, int] = ("", 0)
    server: tuple[str, int] = ("", 0)
    # The numbers as on the wire (tcpdump -S); the ACK number only where the ACK flag is set.
    absolute_seq: int | None = None
    absolute_ack: int | None = None

    @property
    def whole_messages(self) -> int:
        """Messages that end in this segment (what the receiving program can act on now)."""
        return sum(1 for piece in self.pieces if piece.fragment in (Fragment.WHOLE, Fragment.END))


def classify_message(message: bytes, *, from_client: bool) -> MessageKind:
    """What a converter (or hello) message is, from its bytes and its direction."""
    if not from_client:
        if message == GREETING:
            return MessageKind.GREETING
        if message.startswith(ERROR_PREFIX):
            return MessageKind.ERROR_REPLY
        return MessageKind.REPLY
    command = split_request_id(message)[1][:2]
    if command == UPPER:
        return MessageKind.UPPER_REQUEST
    if command == LOWER:
        return MessageKind.LOWER_REQUEST
    if command == CLOSE:
        return MessageKind.CLOSE_REQUEST
    return MessageKind.TEXT


class LadderBuilder:
    """Turns captured packets into ladder steps. Call `add(packet)` in capture order."""

    def __init__(self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self._tracker = ConnectionTracker()
        self._framers: dict[tuple[int, tuple[str, int]], LineFramer] = {}
        self._flows: dict[tuple[tuple[str, int], ...], tuple[int, tuple[str, int]]] = {}
        self._udp_count = 0
        self.max_message_bytes = max_message_bytes

    def add(self, packet: Packet) -> LadderStep:
        if packet.proto == "udp":
            return self._add_datagram(packet)
        segment = self._tracker.track(packet)
        connection = segment.connection
        framer_key = (connection.number, packet.source)
        if segment.is_new_connection:
            for side in (connection.client, connection.server):
                self._framers.pop((connection.number, side), None)
        framer = self._framers.get(framer_key)
        if framer is None:
            framer = self._framers[framer_key] = LineFramer(self.max_message_bytes)
        pieces = self._pieces(framer, segment.delivered, segment.from_client)
        if segment.fin:
            pieces += self._close(framer, segment.from_client)
            del self._framers[framer_key]
        assert packet.flags is not None
        return LadderStep(
            connection=connection.number,
            time=packet.time,
            proto="tcp",
            sender=packet.source,
            receiver=packet.destination,
            from_client=segment.from_client,
            flags=describe_flags(packet.flags),
            relative_seq=segment.relative_seq,
            relative_ack=segment.relative_ack,
            payload_length=packet.payload_length,
            pieces=tuple(pieces),
            retransmission=segment.retransmission,
            opens_connection=segment.is_new_connection,
            client=connection.client,
            server=connection.server,
            absolute_seq=packet.seq,
            absolute_ack=packet.ack if packet.has(TcpFlags.ACK) else None,
        )

    @staticmethod
    def _pieces(framer: LineFramer, data: bytes, from_client: bool) -> list[MessagePiece]:
        if not data:
            return []
        continued = framer.has_partial_message
        earlier = bytes(data)
        events = framer.receive_data(data)
        pieces: list[MessagePiece] = []
        cursor = 0  # where the next message's own bytes begin within this segment
        for index, event in enumerate(events):
            if isinstance(event, FrameTooLong | TruncatedFrame):
                break
            end = earlier.find(b"\n", cursor)
            own = earlier[cursor:end].removesuffix(b"\r") if end >= 0 else earlier[cursor:]
            cursor = end + 1 if end >= 0 else len(earlier)
            fragment = Fragment.END if index == 0 and continued else Fragment.WHOLE
            pieces.append(
                MessagePiece(
                    event if fragment is Fragment.END else own,
                    classify_message(event, from_client=from_client),
                    fragment,
                )
            )
        if framer.has_partial_message:
            tail = earlier[cursor:]
            fragment = Fragment.MIDDLE if continued and not pieces else Fragment.START
            pieces.append(
                MessagePiece(tail, classify_message(tail, from_client=from_client), fragment)
            )
        return pieces

    @staticmethod
    def _close(framer: LineFramer, from_client: bool) -> list[MessagePiece]:
        pieces = []
        for event in framer.receive_eof():
            if isinstance(event, bytes):
                pieces.append(
                    MessagePiece(
                        event,
                        classify_message(event, from_client=from_client),
                        Fragment.END,
                        ended_by_close=True,
                    )
                )
        return pieces

    def _add_datagram(self, packet: Packet) -> LadderStep:
        key = endpoints_key(packet.source, packet.destination)
        flow = self._flows.get(key)
        opens = flow is None
        if flow is None:
            self._udp_count += 1
            # The first sender is the client: UDP has no handshake to tell.
            flow = self._flows[key] = (self._udp_count, packet.source)
        number, client = flow
        from_client = packet.source == client
        server = packet.destination if from_client else packet.source
        piece = MessagePiece(
            packet.payload,
            classify_message(packet.payload, from_client=from_client),
            Fragment.WHOLE,
        )
        return LadderStep(
            connection=number,
            time=packet.time,
            proto="udp",
            sender=packet.source,
            receiver=packet.destination,
            from_client=from_client,
            flags="",
            relative_seq=None,
            relative_ack=None,
            payload_length=packet.payload_length,
            pieces=(piece,) if packet.payload else (),
            opens_connection=opens,
            client=client,
            server=server,
        )


__all__ = [
    "Fragment",
    "LadderBuilder",
    "LadderStep",
    "MessageKind",
    "MessagePiece",
    "TcpFlags",
    "classify_message",
]
