"""The words of the ladder: what each arrow and each message in it is called.

Shared by the terminal ladder (`capture --ladder`) and its picture (`capture --ladder --svg`), so
both say the same thing in the same words and language. A message's bytes come from a peer and
are hostile: they pass the project's one escaper, cut at `MESSAGE_PREVIEW_BYTES` with their
size named, before they become part of any label.
"""

from __future__ import annotations

from socklab.i18n import _
from socklab.protocol.endpoints import format_endpoint
from socklab.protocol.escaping import escape_for_terminal
from socklab.tools.capture.ladder import Fragment, LadderStep, MessageKind, MessagePiece

# A message shown in a ladder is a preview: 40 bytes keep an arrow's note on one line of an
# 80-column terminal (and of a projected picture); the size note tells how much more there was.
MESSAGE_PREVIEW_BYTES = 40


def kind_label(kind: MessageKind) -> str:
    return {
        MessageKind.GREETING: _("greeting"),
        MessageKind.UPPER_REQUEST: _("request"),
        MessageKind.LOWER_REQUEST: _("request"),
        MessageKind.CLOSE_REQUEST: _("close request"),
        MessageKind.ERROR_REPLY: _("error reply"),
        MessageKind.REPLY: _("reply"),
        MessageKind.TEXT: _("message"),
    }[kind]


def preview_message(text: bytes) -> str:
    """A message's bytes as a quoted, escaped, bounded one-line string."""
    return escape_for_terminal(text, max_bytes=MESSAGE_PREVIEW_BYTES, quoted=True)


def describe_piece(piece: MessagePiece) -> str:
    label = f"{kind_label(piece.kind)} {preview_message(piece.text)}"
    if piece.ended_by_close:
        return label + " " + _("(no delimiter: ended by the FIN)")
    if piece.fragment is Fragment.START:
        return label + " " + _("(begins here, continues in a later segment)")
    if piece.fragment is Fragment.END:
        return label + " " + _("(completed here; began in an earlier segment)")
    if piece.fragment is Fragment.MIDDLE:
        return _("part of a message {text} (continues)").format(text=preview_message(piece.text))
    return label


def describe_step_notes(step: LadderStep) -> tuple[str | None, str | None, list[str]]:
    """The parts of an arrow's note: the retransmission remark, the "N messages in one segment"
    heading (both None where they do not apply) and each message piece."""
    retransmission = _("retransmission: bytes already delivered") if step.retransmission else None
    heading = (
        _("{count} messages in one segment:").format(count=step.whole_messages)
        if step.whole_messages >= 2
        else None
    )
    return retransmission, heading, [describe_piece(piece) for piece in step.pieces]


def describe_step_messages(step: LadderStep) -> str:
    """An arrow's note on one line (the terminal ladder)."""
    retransmission, heading, pieces = describe_step_notes(step)
    text = "; ".join(pieces)
    if heading is not None:
        text = heading + " " + text
    return " · ".join(note for note in (retransmission, text) if note)


def describe_arrow(step: LadderStep, *, absolute: bool = False) -> str:
    """`SYN+ACK seq=0 ack=1`, `PSH+ACK seq=1 ack=30 len=9`, `len=4` (UDP): an arrow's label.

    Sequence numbers relative to each direction's first one (Wireshark's default), or as on the
    wire with `absolute` (tcpdump -S).
    """
    seq, ack = step.relative_seq, step.relative_ack
    if absolute and seq is not None:
        seq, ack = step.absolute_seq, step.absolute_ack
    return " ".join(
        part
        for part in (
            step.flags,
            f"seq={seq}" if seq is not None else "",
            f"ack={ack}" if ack is not None else "",
            f"len={step.payload_length}" if step.payload_length or step.proto == "udp" else "",
        )
        if part
    )


def describe_connection(step: LadderStep) -> str:
    """The heading of the connection (or UDP flow) that `step` belongs to."""
    title = (
        _("TCP connection {number}: client {client} ⇄ server {server}")
        if step.proto == "tcp"
        else _("UDP flow {number}: {client} ⇄ {server} (first sender on the left)")
    )
    return title.format(
        number=step.connection,
        client=format_endpoint(*step.client),
        server=format_endpoint(*step.server),
    )


__all__ = [
    "MESSAGE_PREVIEW_BYTES",
    "describe_arrow",
    "describe_connection",
    "describe_piece",
    "describe_step_messages",
    "describe_step_notes",
    "kind_label",
    "preview_message",
]
