"""Coverage-guided fuzzing of the sans-I/O core with atheris (libFuzzer for Python).

One input drives everything: its first byte picks the framing and whether the stream ends with
EOF, its second byte the message limit (small limits reach the over-long paths quickly), the
rest is the byte stream a peer sends. `check_protocol_input` then asserts the core's contract:

* a peer can make the core reply, reject or close, never raise (any exception is a crash);
* a session fed the stream whole and one fed it one byte at a time send the same bytes, report
  the same events and end in the same state — TCP may cut a stream anywhere, so the answer must
  not depend on where (except for `raw`, the slides' naive framing, which is chunk-dependent by
  design and only checked for crashes);
* the same bytes as one UDP datagram get no reply or one no longer than the datagram.

Run by `tests/fuzz/test_fuzz_protocol.py` for 30,000 inputs in CI (100,000 with -m slow). A long run (documented in
docs/RELIABILITY.md) keeps its corpus between runs:

    mkdir -p .fuzz-corpus && .venv/bin/python tests/fuzz/fuzz_protocol.py .fuzz-corpus \\
        -max_total_time=3600 -max_len=4096
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

FRAMINGS = ("line", "length", "raw")


@dataclass(frozen=True, slots=True)
class SessionOutcome:
    sent: bytes
    events: tuple[object, ...]
    state: object
    requests_served: int


def run_session(
    framing: str, limit: int, chunks: list[bytes], end_with_eof: bool
) -> SessionOutcome:
    from socklab.protocol.session import ConverterSession

    session = ConverterSession(framing, max_message_bytes=limit)
    sent = [session.data_to_send()]
    events: list[object] = []
    for chunk in chunks:
        session.receive_data(chunk)
        sent.append(session.data_to_send())
        events.extend(session.take_events())
    if end_with_eof:
        session.receive_eof()
        sent.append(session.data_to_send())
        events.extend(session.take_events())
    return SessionOutcome(b"".join(sent), tuple(events), session.state, session.requests_served)


def check_protocol_input(data: bytes) -> None:
    """Assert the core's contract for one fuzz input (see the module docstring)."""
    from socklab.protocol.converter import CloseRequest, ErrorReply, handle_datagram, handle_request

    if len(data) < 2:
        return
    framing = FRAMINGS[data[0] % len(FRAMINGS)]
    end_with_eof = data[0] & 0x80 != 0
    limit = 1 + data[1] * 4  # 1..1021 bytes: small enough to overflow often
    stream = data[2:]

    whole = run_session(framing, limit, [stream], end_with_eof)
    trickled = run_session(
        framing, limit, [stream[i : i + 1] for i in range(len(stream))], end_with_eof
    )
    if framing != "raw":
        assert whole == trickled, f"{framing}: whole {whole!r} != one byte at a time {trickled!r}"

    reply = handle_datagram(stream)
    assert reply is None or (isinstance(reply, bytes) and len(reply) <= len(stream))
    if not stream:
        assert reply is None
    assert isinstance(handle_request(stream), bytes | ErrorReply | CloseRequest)


def main() -> None:
    import atheris

    with atheris.instrument_imports(include=["socklab.protocol"]):
        import socklab.protocol.converter
        import socklab.protocol.session  # noqa: F401

    atheris.Setup(sys.argv, check_protocol_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
