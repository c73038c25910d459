"""Conformance checks for a converter server (docs/PROTOCOL.md), over TCP and over UDP.

Strategy: socklab's own protocol core is the oracle. Every expected byte string is computed by
feeding the very bytes a check sends, piece by piece, to a `ConverterSession` with the framing
under test (or to `handle_datagram` over UDP); nothing here converts text itself. So `--framing
raw` expects what the slides' naive server answers (no delimiters, merged requests swallowed),
and `line`/`length` expect real framing. What a check needs to know about a framing (whether
its messages have ends, the size of its header) comes from the framing registry, never from
its name: a new framing is checked by adding it there.

Each check is data (`ServerCheck`: id, title, framings it applies to, the function that runs
it) and runs on its own connections under its own deadline (`--timeout`), so one broken answer
cannot spoil the next check and a hanging server costs one timeout per check. A network error
in the middle of a check (refused, reset) is that check's deviation, never an exception.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from socklab.errors import NetworkError, RefusedError, UsageError
from socklab.i18n import _, format_count, format_number, ngettext
from socklab.protocol.converter import ERROR_PREFIX, GREETING, handle_datagram
from socklab.protocol.framing import (
    FRAMINGS,
    FramingName,
    describe_framing,
    framing_info,
    make_framer,
)
from socklab.protocol.limits import DEFAULT_MAX_MESSAGE_BYTES
from socklab.protocol.session import ConverterSession
from socklab.tools.check.probe import DatagramProbe, Deadline, Ending, Received, StreamProbe
from socklab.tools.check.results import (
    CheckObserver,
    CheckReport,
    Finding,
    run_checks,
    show_bytes,
)

STREAM_FRAMINGS: frozenset[str] = frozenset(FRAMINGS)
DELIMITED_FRAMINGS: frozenset[str] = frozenset(
    name for name, info in FRAMINGS.items() if info.delimits_messages
)
# Enough to tell "serves clients at once" from "one after the other" without loading the server.
DEFAULT_CONCURRENT_CLIENTS = 3
DEFAULT_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class ServerTarget:
    """The server under test and what it is expected to speak."""

    host: str
    port: int
    framing: FramingName = "line"
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    concurrent_clients: int = DEFAULT_CONCURRENT_CLIENTS

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ServerCheck:
    """One server check: `depends_on` names the earlier checks whose failure makes this one
    "not reached" (its failure would only repeat theirs)."""

    check_id: str
    title: str
    framings: frozenset[str]  # FramingName, or "datagram" for UDP
    run: Callable[[ServerTarget], Finding]
    depends_on: tuple[str, ...] = field(default=())


# --- the oracle --------------------------------------------------------------------------------


def expected_replies(target: ServerTarget, pieces: list[bytes]) -> bytes:
    """What a conforming server sends back for `pieces`, each arriving as one read."""
    session = ConverterSession(
        target.framing, max_message_bytes=target.max_message_bytes, greet=False
    )
    for piece in pieces:
        session.receive_data(piece)
    return session.data_to_send()


def encode(target: ServerTarget, message: bytes) -> bytes:
    return make_framer(target.framing, target.max_message_bytes).encode(message)


def count_messages(framing: str, data: bytes) -> int:
    """Complete messages in `data` under `framing` (undelimited: any bytes count as one)."""
    return framing_info(framing).count_messages(data)


def first_message(framing: str, data: bytes) -> bytes:
    return framing_info(framing).first_message(data)


def replies_complete(target: ServerTarget, expected: bytes) -> Callable[[bytes], bool]:
    """When to stop reading: as many messages as expected (undelimited: as many bytes)."""
    info = framing_info(target.framing)
    if not info.delimits_messages:
        return lambda data: len(data) >= len(expected)
    wanted = info.count_messages(expected)
    return lambda data: info.count_messages(data) >= wanted


def one_message(target: ServerTarget) -> Callable[[bytes], bool]:
    return lambda data: count_messages(target.framing, data) >= 1


def greeting_done(target: ServerTarget) -> Callable[[bytes], bool]:
    """A greeting, framed or (as the slides' server sends it) bare: either way the check goes on."""
    return lambda data: count_messages(target.framing, data) >= 1 or data == GREETING


# How long a failed check waits to learn whether the server still accepts connections.
LISTENING_PROBE_S = 1.0


def stopped_listening(target: ServerTarget) -> bool:
    """True when a connection to the server is refused now (it crashed or exited)."""
    try:
        StreamProbe(
            target.host, target.port, Deadline(min(target.timeout_s, LISTENING_PROBE_S))
        ).close()
    except RefusedError:
        return True
    except NetworkError:
        return False  # a full backlog or a slow server: still there
    return False


def describe_refused() -> str:
    return _("connection refused: nothing listens there (did the server crash?)")


def describe_error(error: NetworkError) -> str:
    if isinstance(error, RefusedError):
        return describe_refused()
    return _("network error: {detail}").format(detail=str(error))


def skip_greeting(
    probe: StreamProbe, target: ServerTarget, within: Deadline | None = None
) -> Received | None:
    """Read the greeting; a Received when the server closed or reset instead (the check fails).

    A missing greeting is the greeting check's business: the other checks go on after half of
    their time, so a server that never greets still has its conversions checked.
    """
    within = within or Deadline(target.timeout_s / 2)
    received = probe.receive_until(greeting_done(target), within=within)
    if received.ending in (Ending.CLOSED, Ending.RESET):
        return received
    return None


def closed_before_request(received: Received, expected: str) -> Finding:
    return Finding(
        expected,
        received.describe(),
        False,
        _("The server ended the connection before the first request."),
    )


# --- TCP checks --------------------------------------------------------------------------------


def check_greeting(target: ServerTarget) -> Finding:
    expected = encode(target, GREETING)
    deadline = Deadline(target.timeout_s)
    info = framing_info(target.framing)
    with StreamProbe(target.host, target.port, deadline) as probe:
        if info.delimits_messages:
            received = probe.receive_until(one_message(target))
        else:
            received = probe.receive_bytes(len(expected))
    passed = received.ending is Ending.COMPLETE and received.data == expected
    note = ""
    if not passed and received.data == GREETING and info.delimits_messages:
        note = unframed_greeting_note(target.framing)
    return Finding(show_bytes(expected), received.describe(), passed, note)


def unframed_greeting_note(framing: FramingName) -> str:
    """The advice for a greeting sent without its framing."""
    match framing:
        case "line":
            return _("The greeting must end with a newline (line framing).")
        case "length":
            return _("The greeting must start with its 4-byte length (length framing).")
        case _:
            return _("The greeting must be framed like every message ({framing} framing).").format(
                framing=describe_framing(framing)
            )


def conversion_check(pieces: list[bytes], note: str = "") -> Callable[[ServerTarget], Finding]:
    """A check that sends `pieces` (already framed) on a fresh connection and compares replies."""

    def run(target: ServerTarget) -> Finding:
        expected = expected_replies(target, pieces)
        deadline = Deadline(target.timeout_s)
        with StreamProbe(target.host, target.port, deadline) as probe:
            ended = skip_greeting(probe, target)
            if ended is not None:
                return closed_before_request(ended, show_bytes(expected))
            probe.send_pieces(pieces)
            received = probe.receive_until(replies_complete(target, expected))
        passed = received.ending is Ending.COMPLETE and received.data == expected
        advice = note
        if not passed and is_unframed(target, expected, received.data):
            advice = unframed_reply_note(target.framing, received.data)
        return Finding(show_bytes(expected), received.describe(), passed, "" if passed else advice)

    return run


def is_unframed(target: ServerTarget, expected: bytes, data: bytes) -> bool:
    """True when `data` is exactly the expected replies' text without their framing (a reply
    missing its newline, or its length header): right words, wrong framing."""
    if not data or not framing_info(target.framing).delimits_messages:
        return False
    messages = make_framer(target.framing, target.max_message_bytes).receive_data(expected)
    bodies = [message for message in messages if isinstance(message, bytes)]
    return data == b"".join(bodies)


def unframed_reply_note(framing: FramingName, data: bytes) -> str:
    """The advice for replies whose text is right but which lack their framing."""
    match framing:
        case "line":
            return _(
                "The reply {reply} is right but has no newline at the end: with line framing every reply ends in \\n."
            ).format(reply=show_bytes(data))
        case "length":
            return _(
                "The reply {reply} is right but has no 4-byte length before it (length framing)."
            ).format(reply=show_bytes(data))
        case _:
            return _("The reply {reply} is right but not framed ({framing} framing).").format(
                reply=show_bytes(data), framing=framing
            )


def framed_conversion(message: bytes, note: str = "") -> Callable[[ServerTarget], Finding]:
    def run(target: ServerTarget) -> Finding:
        return conversion_check([encode(target, message)], note)(target)

    return run


def check_split_request(target: ServerTarget) -> Finding:
    framed = encode(target, b"L:UPPER")
    header_bytes = framing_info(target.framing).header_bytes
    if header_bytes:
        # Split the header too: a reader must wait for all of it.
        pieces = [framed[:2], framed[2 : header_bytes + 2], framed[header_bytes + 2 :]]
    else:
        pieces = [framed[:2], framed[2:]]  # the slides' `L:` then `UPPER\n`
    return conversion_check(
        pieces,
        _(
            "The request arrived in several pieces; a server must collect bytes until the message is complete."
        ),
    )(target)


def check_merged_requests(target: ServerTarget) -> Finding:
    pieces = [encode(target, b"U:a") + encode(target, b"L:B")]
    return conversion_check(
        pieces,
        _("Two requests arrived in one read; a server must answer each of them, in order."),
    )(target)


def error_then_usable(request: bytes, note: str) -> Callable[[ServerTarget], Finding]:
    """`request` must get an `E:` reply, and the same connection must then convert `U:ok`."""

    def run(target: ServerTarget) -> Finding:
        follow_up = encode(target, b"U:ok")
        expected_follow_up = expected_replies(target, [follow_up])
        expected = _("a reply starting 'E:', then {reply} (the connection stays usable)").format(
            reply=show_bytes(expected_follow_up)
        )
        deadline = Deadline(target.timeout_s)
        with StreamProbe(target.host, target.port, deadline) as probe:
            ended = skip_greeting(probe, target)
            if ended is not None:
                return closed_before_request(ended, expected)
            probe.send(encode(target, request))
            error_reply = probe.receive_until(one_message(target))
            message = first_message(target.framing, error_reply.data)
            if error_reply.ending is not Ending.COMPLETE or not message.startswith(ERROR_PREFIX):
                advice = note
                if unframed_error_reply(target, error_reply):
                    advice = unframed_reply_note(target.framing, error_reply.data)
                return Finding(expected, error_reply.describe(), False, advice)
            probe.send(follow_up)
            received = probe.receive_until(replies_complete(target, expected_follow_up))
        passed = received.ending is Ending.COMPLETE and received.data == expected_follow_up
        shown = _("{error}, then {follow_up}").format(
            error=show_bytes(error_reply.data), follow_up=received.describe()
        )
        return Finding(
            expected,
            shown,
            passed,
            "" if passed else _("After an error reply the connection must stay usable."),
        )

    return run


def check_over_long(target: ServerTarget) -> Finding:
    limit = target.max_message_bytes
    header_bytes = framing_info(target.framing).header_bytes
    # A message one byte over the limit, cut short: with a header, the header only (a reader
    # refuses it before any of the body arrives); else one byte over the limit and no end yet
    # (a bounded reader notices now, one that buffers until a newline would keep growing).
    over_long = make_framer(target.framing, limit + 1).encode(b"U:" + b"a" * (limit - 1))
    data = over_long[: header_bytes or limit + 1]
    expected = _(
        "a reply starting 'E:' (the server may then close) for a message of {size} bytes"
    ).format(size=format_number(limit + 1))
    deadline = Deadline(target.timeout_s)
    with StreamProbe(target.host, target.port, deadline) as probe:
        ended = skip_greeting(probe, target)
        if ended is not None:
            return closed_before_request(ended, expected)
        probe.send(data)
        received = probe.receive_until(one_message(target))
    message = first_message(target.framing, received.data)
    passed = received.ending is Ending.COMPLETE and message.startswith(ERROR_PREFIX)
    if not passed and unframed_error_reply(target, received):
        note = unframed_reply_note(target.framing, received.data)
    else:
        note = _(
            "A message longer than {limit} bytes must be refused with 'E:' as soon as the limit is passed (use --max-message-bytes if the server's limit differs)."
        ).format(limit=format_number(limit))
    return Finding(expected, received.describe(), passed, "" if passed else note)


def unframed_error_reply(target: ServerTarget, received: Received) -> bool:
    """An `E:` reply came, but without its framing (no newline, no length): the wait for its
    end ran out."""
    return (
        framing_info(target.framing).delimits_messages
        and received.ending is not Ending.COMPLETE
        and received.data.startswith(ERROR_PREFIX)
    )


def check_close(target: ServerTarget) -> Finding:
    expected = _("the server closes the connection (at most one parting message)")
    deadline = Deadline(target.timeout_s)
    with StreamProbe(target.host, target.port, deadline) as probe:
        ended = skip_greeting(probe, target)
        if ended is not None:
            return closed_before_request(ended, expected)
        probe.send(encode(target, b"C:"))
        received = probe.receive_eof()
    closed = received.ending in (Ending.COMPLETE, Ending.RESET)
    # A parting message without its end counts too: the stream ended after it.
    messages = framing_info(target.framing).count_messages(received.data, at_eof=True)
    passed = closed and messages <= 1
    if received.ending is Ending.COMPLETE:
        shown = (
            _("{data}, then the connection was closed").format(data=show_bytes(received.data))
            if received.data
            else _("the connection was closed")
        )
    else:
        shown = received.describe()
    note = ""
    if not closed:
        note = _("After 'C:' the server must close the connection.")
    elif messages > 1:
        note = _("At most one parting message may come before the close.")
    return Finding(expected, shown, passed, note)


def check_concurrent_clients(target: ServerTarget) -> Finding:
    count = target.concurrent_clients
    expected = ngettext(
        "{count} client connected gets the greeting and its own replies",
        "{count} clients connected at once each get the greeting and their own replies",
        count,
    ).format(count=format_number(count))
    one_at_a_time = _(
        "Each client must be greeted and answered while the others stay connected; a server that serves one client at a time fails here."
    )
    deadline = Deadline(target.timeout_s)
    probes: list[StreamProbe] = []
    try:
        for number in range(1, count + 1):
            try:
                probes.append(StreamProbe(target.host, target.port, deadline))
            except NetworkError as error:
                # A server that accepts one client at a time lets its backlog fill up; a
                # connect that times out is then this check's finding, not a network failure.
                failure = _("client {number}: could not connect ({error})").format(
                    number=number, error=describe_error(error)
                )
                return Finding(expected, failure, False, one_at_a_time)
        # All greetings share half of the time, as in the other checks: a missing greeting is
        # the greeting check's finding, a connection closed before any request is this one's.
        greetings_deadline = Deadline(target.timeout_s / 2)
        for number, probe in enumerate(probes, start=1):
            ended = skip_greeting(probe, target, greetings_deadline)
            if ended is not None:
                return Finding(
                    expected,
                    _("client {number}: {received}").format(
                        number=number, received=ended.describe()
                    ),
                    False,
                    one_at_a_time,
                )
        # Answer in reverse order of connecting: a server that only serves its oldest
        # connection cannot pass by accident.
        for number, probe in reversed(list(enumerate(probes, start=1))):
            request = encode(target, f"U:client {number}".encode())
            expected_reply = expected_replies(target, [request])
            probe.send(request)
            received = probe.receive_until(replies_complete(target, expected_reply))
            if received.ending is not Ending.COMPLETE or received.data != expected_reply:
                return Finding(
                    expected,
                    _("client {number}: expected {reply}, received {received}").format(
                        number=number,
                        reply=show_bytes(expected_reply),
                        received=received.describe(),
                    ),
                    False,
                    one_at_a_time,
                )
    finally:
        for probe in probes:
            probe.close()
    return Finding(
        expected,
        ngettext("the client was served", "all {count} clients were served", count).format(
            count=format_number(count)
        ),
        True,
    )


# --- UDP checks --------------------------------------------------------------------------------


def show_datagram(datagram: bytes | None, timeout_s: float) -> str:
    if datagram is None:
        return _("no datagram within {seconds} s").format(
            seconds=format_number(timeout_s, decimals=None)
        )
    return show_bytes(datagram)


def datagram_conversion(request: bytes) -> Callable[[ServerTarget], Finding]:
    def run(target: ServerTarget) -> Finding:
        expected = handle_datagram(request)
        assert expected is not None
        with DatagramProbe(target.host, target.port, Deadline(target.timeout_s)) as probe:
            probe.send(request)
            reply = probe.receive()
        return Finding(
            show_bytes(expected), show_datagram(reply, target.timeout_s), reply == expected
        )

    return run


def check_datagram_peers(target: ServerTarget) -> Finding:
    requests = (b"U:first peer", b"U:second peer")
    expected_replies_ = [handle_datagram(request) for request in requests]
    expected = _("{first} to the first socket, {second} to the second").format(
        first=show_bytes(expected_replies_[0] or b""),
        second=show_bytes(expected_replies_[1] or b""),
    )
    deadline = Deadline(target.timeout_s)
    with (
        DatagramProbe(target.host, target.port, deadline) as first,
        DatagramProbe(target.host, target.port, deadline) as second,
    ):
        first.send(requests[0])
        second.send(requests[1])
        replies = [first.receive(), second.receive()]
    passed = replies == expected_replies_
    shown = _("{first} at the first socket, {second} at the second").format(
        first=show_datagram(replies[0], target.timeout_s),
        second=show_datagram(replies[1], target.timeout_s),
    )
    note = (
        ""
        if passed
        else _("Each peer must be answered at its own address (the one recvfrom() returned).")
    )
    return Finding(expected, shown, passed, note)


def replies_before_marker(probe: DatagramProbe, marker_reply: bytes) -> tuple[list[bytes], bool]:
    """Datagrams received before `marker_reply`, and whether the marker came at all."""
    before: list[bytes] = []
    while True:
        datagram = probe.receive()
        if datagram is None:
            return before, False
        if datagram == marker_reply:
            return before, True
        before.append(datagram)
        if len(before) > 16:  # a flood: enough to judge
            return before, False


def check_no_amplification(target: ServerTarget) -> Finding:
    # `ŉ` upper-cases to `ʼN`: 2 bytes become 3, so the converted text outgrows the request.
    request = b"U:" + "ŉ".encode() * 20
    expected = _("no reply, or one of at most {size} bytes (the request's size)").format(
        size=format_number(len(request))
    )
    marker, marker_reply = b"U:next", handle_datagram(b"U:next")
    assert marker_reply is not None
    with DatagramProbe(target.host, target.port, Deadline(target.timeout_s)) as probe:
        probe.send(request)
        probe.send(marker)
        before, marker_seen = replies_before_marker(probe, marker_reply)
    too_long = [datagram for datagram in before if len(datagram) > len(request)]
    passed = marker_seen and not too_long and len(before) <= 1
    if before:
        shown = ", ".join(
            _("{data} ({size})").format(
                data=show_bytes(d, name_size=False),
                size=format_count("{count} byte", "{count} bytes", len(d)),
            )
            for d in before
        )
    else:
        shown = _("no reply")
    if not marker_seen:
        shown = _("{shown}; no reply to the follow-up {marker} either").format(
            shown=shown, marker=show_bytes(marker)
        )
    note = (
        ""
        if passed
        else _(
            "A reply longer than its request lets a spoofed sender amplify traffic; answer with a short error or not at all."
        )
    )
    return Finding(expected, shown, passed, note)


def check_empty_datagram(target: ServerTarget) -> Finding:
    marker, marker_reply = b"U:after", handle_datagram(b"U:after")
    assert marker_reply is not None
    expected = _("no reply to the empty datagram; {reply} to the next request").format(
        reply=show_bytes(marker_reply)
    )
    with DatagramProbe(target.host, target.port, Deadline(target.timeout_s)) as probe:
        probe.send(b"")
        probe.send(marker)
        before, marker_seen = replies_before_marker(probe, marker_reply)
    passed = marker_seen and not before
    parts = [show_bytes(d) for d in before]
    parts.append(show_bytes(marker_reply) if marker_seen else show_datagram(None, target.timeout_s))
    note = "" if passed else _("An empty datagram is not a request and gets no reply.")
    return Finding(expected, ", ".join(parts), passed, note)


# --- the catalogue -----------------------------------------------------------------------------


# A server that fails the first plain conversion fails every check that needs a conversion for
# the same reason: those checks depend on it, and are "not reached" instead of repeating it.
CONVERTS = ("upper-ascii",)
CONVERTS_DATAGRAM = ("udp-lower",)


def stream_checks() -> list[ServerCheck]:
    """Every TCP check, in the order they run (built per run, so titles are translated)."""
    line_only = frozenset({"line"})
    return [
        ServerCheck("greeting", _("greeting sent on connect"), STREAM_FRAMINGS, check_greeting),
        ServerCheck(
            "upper-ascii",
            _("U: upper-cases ASCII"),
            STREAM_FRAMINGS,
            framed_conversion(b"U:hello world"),
        ),
        ServerCheck(
            "lower-ascii",
            _("L: lower-cases ASCII"),
            STREAM_FRAMINGS,
            framed_conversion(b"L:HELLO World"),
            depends_on=CONVERTS,
        ),
        ServerCheck(
            "upper-unicode",
            _("U: applies full Unicode rules (straße → STRASSE)"),
            STREAM_FRAMINGS,
            framed_conversion(
                "U:straße".encode(),
                _("Decode the text as UTF-8 and use full Unicode case mapping."),
            ),
            depends_on=CONVERTS,
        ),
        ServerCheck(
            "lower-unicode",
            _("L: lower-cases Unicode (GRÜSSE → grüsse)"),
            STREAM_FRAMINGS,
            framed_conversion(
                "L:GRÜSSE".encode(),
                _("Decode the text as UTF-8 and use full Unicode case mapping."),
            ),
            depends_on=CONVERTS,
        ),
        ServerCheck(
            "split-request",
            _("a request split over several sends"),
            STREAM_FRAMINGS,
            check_split_request,
            depends_on=CONVERTS,
        ),
        ServerCheck(
            "merged-requests",
            _("two requests in one send"),
            STREAM_FRAMINGS,
            check_merged_requests,
            depends_on=CONVERTS,
        ),
        ServerCheck(
            "crlf",
            _("a request ending in \\r\\n is accepted"),
            line_only,
            conversion_check(
                [b"U:crlf\r\n"],
                _("Strip a '\\r' before the '\\n': Windows tools end lines with \\r\\n."),
            ),
            depends_on=CONVERTS,
        ),
        ServerCheck(
            "unknown-command",
            _("unknown command gets 'E:', connection stays usable"),
            STREAM_FRAMINGS,
            error_then_usable(
                b"X:what", _("An unknown command must be answered with 'E:' and a reason.")
            ),
            depends_on=CONVERTS,
        ),
        ServerCheck(
            "invalid-utf8",
            _("invalid UTF-8 gets 'E:', connection stays usable"),
            STREAM_FRAMINGS,
            error_then_usable(
                b"U:caf\xe9",
                _(
                    "Text that is not valid UTF-8 must be answered with 'E:' (not crash the server)."
                ),
            ),
            depends_on=CONVERTS,
        ),
        ServerCheck(
            "over-long", _("an over-long message gets 'E:'"), DELIMITED_FRAMINGS, check_over_long
        ),
        ServerCheck("close", _("C: closes the connection"), STREAM_FRAMINGS, check_close),
        ServerCheck(
            "concurrent-clients",
            _("several clients served at once"),
            STREAM_FRAMINGS,
            check_concurrent_clients,
            depends_on=CONVERTS,
        ),
    ]


def datagram_checks() -> list[ServerCheck]:
    udp = frozenset({"datagram"})
    return [
        ServerCheck(
            "udp-lower", _("L:UPPER\\n gets upper\\n"), udp, datagram_conversion(b"L:UPPER\n")
        ),
        ServerCheck(
            "udp-upper-unicode",
            _("U: applies full Unicode rules"),
            udp,
            datagram_conversion("U:straße".encode()),
            depends_on=CONVERTS_DATAGRAM,
        ),
        ServerCheck(
            "udp-peers",
            _("each peer answered at its own address"),
            udp,
            check_datagram_peers,
            depends_on=CONVERTS_DATAGRAM,
        ),
        ServerCheck(
            "udp-no-amplification",
            _("a reply is never longer than its request"),
            udp,
            check_no_amplification,
            depends_on=CONVERTS_DATAGRAM,
        ),
        ServerCheck(
            "udp-empty",
            _("no reply to an empty datagram"),
            udp,
            check_empty_datagram,
            depends_on=CONVERTS_DATAGRAM,
        ),
    ]


def run_check(check: ServerCheck, target: ServerTarget, *, first: bool = False) -> Finding:
    """What `check` finds; a network error is its deviation. Refused means nothing listens any
    more (the server crashed): no later check can run, so the run ends with this one. Refused
    in the `first` check is raised: nothing listened at all."""
    try:
        return check.run(target)
    except RefusedError:
        if first:
            raise
        return Finding(check.title, describe_refused(), False, ends_run=True)
    except NetworkError as error:
        return Finding(check.title, describe_error(error), False)


def check_converter_server(
    target: ServerTarget,
    *,
    udp: bool = False,
    only: frozenset[str] = frozenset(),
    observer: CheckObserver | None = None,
) -> CheckReport:
    """Run every check that applies to `target` (or those in `only`), reporting each result to
    `observer` as it completes. Ctrl+C ends the run: the report then holds the results so far
    and says it was interrupted.

    Raises RefusedError if nothing listens at all, UsageError for an unknown id in `only`.
    """
    catalogue = datagram_checks() if udp else stream_checks()
    unknown = sorted(only - {check.check_id for check in catalogue})
    if unknown:
        raise UsageError(
            _("unknown check {names}; choose from {choices}").format(
                names=", ".join(unknown), choices=", ".join(c.check_id for c in catalogue)
            )
        )
    if udp:
        checks = catalogue
        framing = "datagram"
    else:
        checks = [check for check in catalogue if target.framing in check.framings]
        framing = target.framing
    if only:
        checks = [check for check in checks if check.check_id in only]
        if not checks:
            raise UsageError(
                _("check {names} does not apply to {framing} framing").format(
                    names=", ".join(sorted(only)), framing=describe_framing(framing)
                )
            )
    # Nothing listening is a usage problem (wrong port): one line, not a dozen identical
    # deviations. Over TCP one connection tells; over UDP the first check's ICMP "port
    # unreachable" does (its probe is a connected socket), and is raised as it is.
    if not udp:
        StreamProbe(target.host, target.port, Deadline(target.timeout_s)).close()
    first_id = checks[0].check_id

    def judge(check: ServerCheck) -> Finding:
        finding = run_check(check, target, first=udp and check.check_id == first_id)
        if udp or finding.passed or finding.ends_run or not stopped_listening(target):
            return finding
        # This check's connection ended as the server died: the crash is its finding, and no
        # later check could reach the server.
        crashed = _("After this check nothing listens at {address} any more: did the server crash?")
        note = f"{finding.note} {crashed}" if finding.note else crashed
        return dataclasses.replace(finding, note=note.format(address=target.address), ends_run=True)

    report = CheckReport(
        subject="converter-server",
        target=target.address,
        transport="udp" if udp else "tcp",
        framing=framing,
        results=(),
    )
    if observer is not None:
        observer.run_started(report)
    results, interrupted = run_checks(checks, judge, observer)
    return dataclasses.replace(report, results=tuple(results), interrupted=interrupted)
