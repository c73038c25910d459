"""The first lessons: the prep sheet's hello programs, the uppercase services, the converter."""

from __future__ import annotations

import threading

from socklab.apps.demo_topics.narration import (
    TIMEOUT_S,
    Say,
    TakingTurns,
    heading,
    observe,
    step,
)
from socklab.apps.hello import run_hello_client, run_hello_server
from socklab.apps.upper import UpperServer, run_upper_client
from socklab.clients.converter_client import DatagramConverterClient, StreamConverterClient
from socklab.i18n import _
from socklab.runtimes import DEFAULT_RUNTIME, serve
from socklab.runtimes.config import ServerConfig

# Who prints each line of the hello exchange, in an order that follows cause and effect:
# the server's four set-up lines; the client up to "Connected!" (the handshake is done in the
# kernel); the server's accept; the client's send; the server's receive; the client's close;
# the server's two closes. S = server, C = client.
HELLO_ORDER = "SSSS CCCC S C S C SS"


def demo_hello(say: Say) -> bool:
    heading(say, _("Hello: one server, one client (prep sheet)"))
    step(
        say,
        _(
            "The sheet's server binds port 9999; this one binds port 0, so the operating system picks a free port: the 'Listening on port' line names it."
        ),
    )
    listening = threading.Event()
    port_box: list[int] = []

    def on_listening(port: int) -> None:
        port_box.append(port)
        listening.set()

    turns = TakingTurns(say, HELLO_ORDER)
    server_says = turns.voice("S", "   ")
    server = threading.Thread(
        target=run_hello_server,
        args=("127.0.0.1", 0, server_says, on_listening),
        daemon=True,
    )
    server.start()
    if not listening.wait(TIMEOUT_S):
        return False
    error = run_hello_client(
        "127.0.0.1", port_box[0], "Hi server!", turns.voice("C", "   "), TIMEOUT_S
    )
    server.join(TIMEOUT_S)
    observe(
        say,
        _(
            "bind() claims the port, listen() waits; accept() returns a NEW socket for this one client."
        ),
    )
    observe(
        say,
        _(
            "connect() reaches the server's IP and port; sendall() sends bytes: the text was encoded to UTF-8 first."
        ),
    )
    return error is None and not server.is_alive()


def demo_upper(say: Say) -> bool:
    ok = True
    for transport in ("udp", "tcp"):
        heading(
            say,
            _(
                "Uppercase service over {transport} (the lecture's port 12000; here a free port the OS picks)"
            ).format(transport=transport.upper()),
        )
        # Server ready, client input, server's log of the request, client's reply line.
        turns = TakingTurns(say, "SCSC")
        server = UpperServer(transport, "127.0.0.1", 0, turns.voice("S", "   server: "))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        client_says = turns.voice("C", "   client: ")
        sentence = "hello sockets"
        client_says(_("Input lowercase sentence:") + " " + sentence)
        reply = run_upper_client(transport, "127.0.0.1", server.address[1], sentence, TIMEOUT_S)
        client_says(_("From Server: {reply}").format(reply=reply))
        server.stop()
        thread.join(TIMEOUT_S)
        ok = ok and reply == sentence.upper()
        if transport == "udp":
            observe(
                say,
                _(
                    "no connection: every datagram carries the client's address, and the reply goes back to it."
                ),
            )
        else:
            observe(
                say,
                _(
                    "a connection per client: the server closes it after one reply, the listening socket stays."
                ),
            )
    return ok


def demo_converter(say: Say) -> bool:
    heading(
        say,
        _(
            "Converter over TCP with line framing (live coding: port 50000; here a free port the OS picks)"
        ),
    )
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
        observe(
            say,
            _(
                "TCP is a byte stream: the newline, not the send() calls, marks where each message ends."
            ),
        )
    heading(say, _("Converter over UDP"))
    with serve(DEFAULT_RUNTIME, ServerConfig(port=0, transport="udp")) as handle:
        host, port = handle.address
        with DatagramConverterClient(host, port, timeout_s=TIMEOUT_S) as datagrams:
            reply = datagrams.request(b"L:UPPER\n")
            say("   " + _("datagram 'L:UPPER\\n' -> {reply}").format(reply=reply.decode().rstrip()))
        observe(
            say,
            _(
                "UDP keeps message boundaries: one datagram in, one datagram out, no connection to close."
            ),
        )
    return closed
