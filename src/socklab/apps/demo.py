"""The guided tour: every program started on loopback, used, and explained in one line each.

Servers run in this process on ports the OS picks (port 0), so the tour never collides with a
server the user already runs, and finishes by itself in a few seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from socklab.apps.hello import run_hello_client, run_hello_server
from socklab.apps.upper import UpperServer, run_upper_client
from socklab.clients.converter_client import DatagramConverterClient, StreamConverterClient
from socklab.i18n import _
from socklab.runtimes import DEFAULT_RUNTIME, serve
from socklab.runtimes.config import ServerConfig

Say = Callable[[str], None]
TIMEOUT_S = 5.0


def _heading(say: Say, title: str) -> None:
    say("")
    say(f"== {title} ==")


def _observe(say: Say, text: str) -> None:
    say("   -> " + _("Observe: {text}").format(text=text))


def demo_hello(say: Say) -> bool:
    _heading(say, _("Hello: one server, one client (prep sheet, port 9999)"))
    listening = threading.Event()
    port_box: list[int] = []

    def on_listening(port: int) -> None:
        port_box.append(port)
        listening.set()

    indent: Say = lambda line: say("   " + line)  # noqa: E731
    server = threading.Thread(
        target=run_hello_server, args=("127.0.0.1", 0, indent, indent, on_listening), daemon=True
    )
    server.start()
    if not listening.wait(TIMEOUT_S):
        return False
    ok = run_hello_client("127.0.0.1", port_box[0], "Hi server!", indent, TIMEOUT_S)
    server.join(TIMEOUT_S)
    _observe(
        say,
        _(
            "bind() claims the port, listen() waits; accept() returns a NEW socket for this one client."
        ),
    )
    _observe(
        say,
        _(
            "connect() reaches the server's IP and port; sendall() sends bytes: the text was encoded to UTF-8 first."
        ),
    )
    return ok and not server.is_alive()


def demo_upper(say: Say) -> bool:
    ok = True
    for transport in ("udp", "tcp"):
        _heading(
            say,
            _("Uppercase service over {transport} (lecture, port 12000)").format(
                transport=transport.upper()
            ),
        )
        server = UpperServer(transport, "127.0.0.1", 0, lambda line: say("   server: " + line))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        sentence = "hello sockets"
        say("   client: " + _("Input lowercase sentence:") + " " + sentence)
        reply = run_upper_client(transport, "127.0.0.1", server.address[1], sentence, TIMEOUT_S)
        say("   client: " + _("From Server: {reply}").format(reply=reply))
        server.stop()
        thread.join(TIMEOUT_S)
        ok = ok and reply == sentence.upper()
        if transport == "udp":
            _observe(
                say,
                _(
                    "no connection: every datagram carries the client's address, and the reply goes back to it."
                ),
            )
        else:
            _observe(
                say,
                _(
                    "a connection per client: the server closes it after one reply, the listening socket stays."
                ),
            )
    return ok


def demo_converter(say: Say) -> bool:
    _heading(say, _("Converter over TCP with line framing (live coding, port 50000)"))
    with serve(DEFAULT_RUNTIME, ServerConfig(port=0)) as handle:
        host, port = handle.address
        with StreamConverterClient(host, port, timeout_s=TIMEOUT_S) as client:
            say("   " + _("greeting: {text}").format(text=client.greeting.decode()))
            client.send_bytes(b"L:")
            client.send_bytes(b"UPPER\n")
            say(
                "   "
                + _("sent 'L:' and 'UPPER\\n' apart -> {reply}").format(
                    reply=client.receive_message().decode()
                )
            )
            client.send_bytes(b"U:a\nL:B\n")
            first, second = client.receive_message(), client.receive_message()
            say(
                "   "
                + _("sent 'U:a\\nL:B\\n' at once -> {first}, {second}").format(
                    first=first.decode(), second=second.decode()
                )
            )
            client.send_bytes(b"U:stra\xc3\x9fe\n")
            say(
                "   "
                + _("sent 'U:straße' -> {reply}").format(reply=client.receive_message().decode())
            )
            client.send_message(b"C:")
            closed = client.maybe_receive_message() is None
        _observe(
            say,
            _(
                "TCP is a byte stream: the newline, not the send() calls, marks where each message ends."
            ),
        )
    _heading(say, _("Converter over UDP"))
    with serve(DEFAULT_RUNTIME, ServerConfig(port=0, transport="udp")) as handle:
        host, port = handle.address
        with DatagramConverterClient(host, port, timeout_s=TIMEOUT_S) as datagrams:
            reply = datagrams.request(b"L:UPPER\n")
            say("   " + _("datagram 'L:UPPER\\n' -> {reply}").format(reply=reply.decode().rstrip()))
        _observe(
            say,
            _(
                "UDP keeps message boundaries: one datagram in, one datagram out, no connection to close."
            ),
        )
    return closed


def demo_datagram(say: Say) -> bool:
    """UDP through `socklab impair`: the plain client stumbles, the retrying client does not."""
    from socklab.errors import NetworkTimeoutError
    from socklab.protocol.retransmission import Answered
    from socklab.tools.impair import FaultSettings, ImpairConfig, start_impair

    _heading(say, _("Datagrams through a bad network (socklab impair)"))
    faults = FaultSettings(loss=0.2, duplicate=0.2, reorder=0.3)
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight"]
    with serve(DEFAULT_RUNTIME, ServerConfig(port=0, transport="udp")) as server:
        config = ImpairConfig(
            transport="udp",
            listen=("127.0.0.1", 0),
            target=server.address,
            faults=faults,
            seed=7,
        )
        with start_impair(config) as relay:
            host, port = relay.address
            say(
                "   "
                + _("relay on port {port}: 20 % lost, 20 % duplicated, 30 % reordered").format(
                    port=port
                )
            )
            say("   " + _("plain client, one datagram per request, 0.3 s for each answer:"))
            troubles = 0
            with DatagramConverterClient(host, port, timeout_s=0.3) as plain:
                for word in words:
                    try:
                        reply = plain.request(b"U:" + word.encode()).decode()
                    except NetworkTimeoutError:
                        reply, troubles = _("(nothing: lost)"), troubles + 1
                    else:
                        if reply != word.upper():
                            troubles += 1
                            reply += "  <- " + _("wrong: the answer to another request")
                    say(f"     U:{word} -> {reply}")
            say("   " + _("retrying client with request ids (--retries 10):"))
            with DatagramConverterClient(host, port, timeout_s=5.0) as retrying:
                results = list(
                    retrying.exchange_reliably(
                        (b"U:" + word.encode() for word in words), retries=10
                    )
                )
                stats = retrying.stats
            correct = [
                isinstance(result, Answered) and result.reply == word.upper().encode()
                for result, word in zip(results, words, strict=False)
            ]
            for result, word in zip(results, words, strict=False):
                reply = result.reply.decode() if isinstance(result, Answered) else "?"
                say(f"     U:{word} -> {reply}")
            if stats is not None:
                say(
                    "   "
                    + _(
                        "retries: {retries}; set aside: {duplicates} duplicate and {reordered} reordered replies"
                    ).format(
                        retries=stats.retries,
                        duplicates=stats.duplicate_replies,
                        reordered=stats.reordered_replies,
                    )
                )
    _observe(
        say,
        _(
            "UDP promises nothing: the plain client met {troubles} lost or mismatched answers."
        ).format(troubles=troubles),
    )
    _observe(
        say,
        _(
            "an id in each request, echoed in the reply, plus a resend after a timeout: every answer once, in order."
        ),
    )
    return len(results) == len(words) and all(correct)


TOPICS: dict[str, Callable[[Say], bool]] = {
    "hello": demo_hello,
    "upper": demo_upper,
    "converter": demo_converter,
    "datagram": demo_datagram,
}


def run_demo(topic: str | None, say: Say) -> bool:
    """Run one topic, or the whole tour; True when every step behaved as described."""
    selected = [TOPICS[topic]] if topic else list(TOPICS.values())
    say(_("socklab demo: everything runs on this computer (127.0.0.1), on ports the OS picks."))
    ok = all([step(say) for step in selected])
    say("")
    say(
        _(
            "Done. Try it yourself: 'socklab converter server' in one terminal, 'socklab converter client' in another."
        )
    )
    return ok
