"""`socklab.serve` and `socklab.connect` on every runtime × transport × framing of the registry:
whole messages, the converter's limits and timeouts, sessions with state, errors as socklab
errors. Servers run in-process (it is a library) on loopback port 0, and every one is stopped."""

from __future__ import annotations

import logging
import re
import socket
import threading
import time

import pytest

import socklab
from socklab.protocol.reply_session import ReplySession
from socklab.protocol.session import Session
from socklab.runtimes import RUNTIMES

pytestmark = pytest.mark.timeout(60)

CASES = [
    pytest.param(model, transport, framing, id=f"{model}-{transport}-{framing}")
    for model, info in RUNTIMES.items()
    for transport in sorted(info.transports)
    for framing in (("line", "length") if transport == "tcp" else ("datagram",))
]
TCP_CASES = [case for case in CASES if case.values[1] == "tcp"]
TCP_MODELS = [model for model, info in RUNTIMES.items() if "tcp" in info.transports]


def shout(message: bytes) -> bytes | None:
    return None if message == b"quiet" else message.upper()


def framed(framing: str, message: bytes) -> bytes:
    return len(message).to_bytes(4, "big") + message if framing == "length" else message + b"\n"


def options(transport: str, framing: str) -> dict[str, str]:
    return {"transport": transport, "framing": "line" if framing == "datagram" else framing}


@pytest.mark.parametrize(("model", "transport", "framing"), CASES)
def test_every_message_arrives_whole_and_is_answered(
    model: str, transport: str, framing: str
) -> None:
    with socklab.serve(shout, model=model, **options(transport, framing)) as server:
        assert server.address[0] == "127.0.0.1" and server.address[1] > 0
        with socklab.connect(*server.address, **options(transport, framing)) as client:
            assert client.request(b"hello") == b"HELLO"
            assert client.request(b"caf\xc3\xa9 \x00\xff") == b"CAF\xc3\xa9 \x00\xff"  # bytes
            if transport == "tcp":
                client.send(b"quiet")  # None: no reply, and the connection goes on
                assert client.request(b"next") == b"NEXT"
        if transport == "tcp":
            # However TCP cuts the stream: one message in two sends, two messages in one.
            with socket.create_connection(server.address, timeout=10) as raw:
                one = framed(framing, b"split")
                raw.sendall(one[:3])
                time.sleep(0.05)
                raw.sendall(one[3:] + framed(framing, b"a") + framed(framing, b"b"))
                expected = b"".join(framed(framing, m) for m in (b"SPLIT", b"A", b"B"))
                received = b""
                while len(received) < len(expected):
                    chunk = raw.recv(1024)
                    assert chunk, "the server closed early"
                    received += chunk
                assert received == expected
    assert not server.is_running


@pytest.mark.parametrize(("model", "transport", "framing"), CASES)
def test_over_long_message_is_refused_as_by_the_converter(
    model: str, transport: str, framing: str
) -> None:
    with (
        socklab.serve(
            shout, model=model, max_message_bytes=16, **options(transport, framing)
        ) as server,
        socklab.connect(*server.address, **options(transport, framing)) as client,
    ):
        reply = client.request(b"x" * 40)
        assert re.fullmatch(rb"E:message of (over 16|40) bytes exceeds the 16-byte limit", reply)
        if transport == "tcp":
            with pytest.raises(socklab.BrokenResourceError, match=r"^the server closed"):
                client.receive()
        else:
            assert client.request(b"short") == b"SHORT"


@pytest.mark.parametrize("model", TCP_MODELS)
def test_a_session_factory_keeps_state_per_connection(model: str) -> None:
    def counting(
        framing: str, *, max_message_bytes: int, greet: bool, record_events: bool
    ) -> Session:
        count = 0

        def reply(message: bytes) -> bytes:
            nonlocal count
            count += 1
            return b"%d:%s" % (count, message)

        return ReplySession(
            reply, framing, max_message_bytes=max_message_bytes, greet=greet, greeting=b"hi"
        )

    with socklab.serve(session=counting, model=model, framing="length") as server:
        for _ in range(2):  # a new connection starts from 1 again
            with socklab.connect(*server.address, framing="length") as client:
                assert client.receive() == b"hi"
                assert [client.request(m) for m in (b"a", b"b")] == [b"1:a", b"2:b"]


@pytest.mark.parametrize("model", TCP_MODELS)
def test_the_converter_is_one_session_among_others(model: str) -> None:
    with (
        socklab.serve(session=socklab.ConverterSession, model=model) as server,
        socklab.connect(*server.address) as client,
    ):
        assert client.receive().startswith(b"Hi I'm your upper/lowercase converter")
        assert client.request(b"U:abc") == b"ABC"


def test_the_naive_raw_framing_works_while_each_message_arrives_alone() -> None:
    with (
        socklab.serve(shout, model="iterative", framing="raw") as server,
        socklab.connect(*server.address, framing="raw") as client,
    ):
        assert client.request(b"hello") == b"HELLO"
        assert client.request(b"world") == b"WORLD"


def test_greeting_goes_first_and_each_client_gets_it() -> None:
    with socklab.serve(shout, model="selectors", greeting=b"welcome") as server:
        for _ in range(2):
            with socklab.connect(*server.address) as client:
                assert client.receive() == b"welcome"
                assert client.request(b"x") == b"X"


@pytest.mark.parametrize("model", ["asyncio", "threads"])
def test_a_failing_reply_closes_its_client_only_and_is_logged(
    model: str, caplog: pytest.LogCaptureFixture
) -> None:
    def fragile(message: bytes) -> bytes:
        if message == b"boom":
            raise RuntimeError("boom")
        return message.upper()

    caplog.set_level(logging.ERROR, logger="socklab")
    with socklab.serve(fragile, model=model) as server:
        with socklab.connect(*server.address) as client:
            assert client.request(b"boom") == b"E:server error"
            with pytest.raises(socklab.BrokenResourceError):
                client.receive()
        with socklab.connect(*server.address) as other:
            assert other.request(b"ok") == b"OK"
    (record,) = [r for r in caplog.records if r.name == "socklab"]
    assert (
        record.getMessage()
        == "the reply function raised RuntimeError; its client got E:server error"
    )
    assert record.exc_info is not None and str(record.exc_info[1]) == "boom"


def test_idle_timeout_applies() -> None:
    with (
        socklab.serve(shout, idle_timeout_s=1) as server,
        socklab.connect(*server.address, timeout=10) as client,
    ):
        started = time.monotonic()
        assert client.receive().startswith(b"E:idle timeout")
        assert time.monotonic() - started < 5
        with pytest.raises(socklab.BrokenResourceError):
            client.receive()


def test_udp_keeps_the_no_reflection_rules() -> None:
    # An echo would answer its own reply forever between two such servers: it stays silent.
    with (
        socklab.serve(lambda message: message, transport="udp", model="selectors") as server,
        socklab.connect(*server.address, transport="udp", timeout=0.3) as client,
        pytest.raises(socklab.NetworkTimeoutError),
    ):
        client.request(b"echo")


def test_many_clients_at_once_on_the_threads_model() -> None:
    results: list[bytes] = []
    with socklab.serve(shout, model="threads") as server:

        def talk(number: int) -> None:
            with socklab.connect(*server.address) as client:
                results.append(client.request(b"c%d" % number))

        threads = [threading.Thread(target=talk, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    assert sorted(results) == sorted(b"C%d" % n for n in range(8))


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        (
            {"max_mesage_bytes": 5},
            TypeError,
            r"unexpected keyword argument\(s\) 'max_mesage_bytes'; the limits are backlog, ",
        ),
        (
            {"idle_timeout_s": -1},
            socklab.UsageError,
            r"^idle_timeout_s must be a positive number, not -1$",
        ),
        (
            {"max_clients": 2.5},
            socklab.UsageError,
            r"^max_clients must be a positive whole number, not 2.5$",
        ),
        ({"model": "fork"}, socklab.UsageError, r"^unknown model 'fork'; choose one of asyncio, "),
        (
            {"model": "threads", "transport": "udp"},
            socklab.UsageError,
            r"^the threads model does not serve UDP$",
        ),
        ({"framing": "xml"}, socklab.UsageError, r"^unknown framing 'xml'"),
        ({"transport": "sctp"}, socklab.UsageError, r"^unknown transport 'sctp'"),
        (
            {"transport": "udp", "greeting": b"hi"},
            socklab.UsageError,
            r"^a UDP server has no connection to greet",
        ),
        (
            {"port": 70000},
            socklab.UsageError,
            r"^port must be a whole number from 0 to 65535, not 70000$",
        ),
    ],
)
def test_options_that_cannot_work_are_refused_before_binding(
    kwargs: dict[str, object], error: type[Exception], pattern: str
) -> None:
    with pytest.raises(error, match=pattern):
        socklab.serve(shout, **kwargs)  # type: ignore[arg-type]


def test_exactly_one_protocol_is_given() -> None:
    with pytest.raises(TypeError, match=r"^serve\(\) takes a reply function or session="):
        socklab.serve()  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="exactly one"):
        socklab.serve(shout, session=socklab.ConverterSession)  # type: ignore[call-overload]
    with pytest.raises(socklab.UsageError, match=r"^ConverterSession is a class: pass a session"):
        socklab.serve(socklab.ConverterSession)  # type: ignore[arg-type]
    with pytest.raises(socklab.UsageError, match=r"^reply must be a function, not bytes$"):
        socklab.serve(b"reply")  # type: ignore[arg-type]
    with pytest.raises(socklab.UsageError, match=r"^a session serves TCP connections"):
        socklab.serve(session=socklab.ConverterSession, transport="udp")  # type: ignore[call-overload]


def test_address_in_use_is_a_socklab_error() -> None:
    with socklab.serve(shout) as server, pytest.raises(socklab.AddressInUseError):
        socklab.serve(shout, port=server.address[1])


def test_connect_errors_are_socklab_errors() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(socklab.RefusedError):
        socklab.connect("127.0.0.1", port)
    with pytest.raises(socklab.UsageError, match=r"^unknown transport 'sctp'"):
        socklab.connect("127.0.0.1", port, transport="sctp")
    with socklab.serve(shout) as server, socklab.connect(*server.address) as client:
        with pytest.raises(
            socklab.UsageError, match=r"^a message with the line framing cannot contain a newline"
        ):
            client.send(b"two\nlines")
        with (
            socklab.connect(*server.address, timeout=0.2) as silent,
            pytest.raises(socklab.NetworkTimeoutError),
        ):
            silent.receive()
        client.close()
        with pytest.raises(socklab.ClosedResourceError):
            client.send(b"after close")
