"""`socklab live`: the instructor's live view, sockets and packets on one page in the browser.

Parsing, the page's labels in the chosen language, and the printed URL: the server, the model
and the page live in `socklab.tools.live`. aiohttp comes with the `live` extra and is imported
only here, when the command runs; without it the command says which extra to install.
"""

from __future__ import annotations

import argparse
import secrets
import webbrowser

from socklab.cli.arguments import host_port, port_number
from socklab.cli.environment import Environment
from socklab.cli.serving import wait_until_stopped
from socklab.cli.status import ExitStatus
from socklab.errors import AddressInUseError
from socklab.i18n import SUPPORTED_LANGUAGES, _, current_language
from socklab.protocol.endpoints import format_endpoint

DEFAULT_HTTP = ("127.0.0.1", 8765)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        _(
            "Serve a live page for a projector: the socket table of the selected ports, a ladder per connection growing as packets arrive, and the byte stream with its messages. Packets need root or CAP_NET_RAW on Linux; the sockets show without."
        )
        + " "
        + _(
            "A socklab program run with --trace and SOCKLAB_LIVE=127.0.0.1:PORT (the page's port) in its environment shows its recv() calls beside the segments."
        )
    )
    parser.add_argument(
        "--http",
        type=host_port,
        default=DEFAULT_HTTP,
        metavar="HOST:PORT",
        help=_(
            "where the page is served (default: 127.0.0.1:8765; :0 picks a free port); an address other than loopback needs the token in the printed URL"
        ),
    )
    parser.add_argument(
        "--port",
        type=port_number,
        action="append",
        default=[],
        metavar="P",
        help=_("sockets and packets from or to this port only (repeat for several)"),
    )
    protocol = parser.add_mutually_exclusive_group()
    protocol.add_argument("--tcp", action="store_true", help=_("TCP only"))
    protocol.add_argument("--udp", action="store_true", help=_("UDP only"))
    parser.add_argument(
        "--iface",
        default="lo",
        metavar="NAME",
        help=_("network interface to capture on (default: %(default)s, the loopback)"),
    )
    parser.add_argument("--open", action="store_true", help=_("open the page in the browser"))
    # The same option as socklab's own --lang, accepted after the command too; main() has
    # already chosen the language from it, so it must not overwrite the global one's value.
    parser.add_argument(
        "--lang",
        choices=SUPPORTED_LANGUAGES,
        default=argparse.SUPPRESS,
        help=_("language of the page and the messages (default: from LANG, else English)"),
    )
    parser.set_defaults(handler=run, graceful_stop=True)


def page_labels() -> dict[str, str]:
    """Every word the page shows, in the current language (the page has no text of its own)."""
    return {
        "title": _("socklab live"),
        "sockets": _("Sockets"),
        "proto": _("Protocol"),
        "state": _("State"),
        "local": _("Local ip:port"),
        "remote": _("Remote ip:port"),
        "process": _("Process"),
        "listening": _("listening socket"),
        "per_client": _("per-client socket"),
        "new": _("new"),
        "closed": _("closed"),
        "time_wait": _(
            "TIME_WAIT: the side that closed first keeps the connection's ip:port pair for twice the maximum segment lifetime, so late segments cannot reach a new connection."
        ),
        "demux": _(
            "One port, many sockets: the listening socket accepts; each client gets its own socket, told apart by the remote ip:port."
        ),
        "no_sockets": _("No sockets on the selected ports yet."),
        "connections": _("Connections"),
        "ladder": _("Ladder"),
        "no_packets": _("No packets yet: start a client on a selected port."),
        "client": _("client"),
        "server": _("server"),
        "stream": _("Byte stream"),
        "stream_hint": _("each box is one message, where the receiver's framing cuts it"),
        "pause": _("Pause"),
        "resume": _("Resume"),
        "step": _("Step"),
        "clear": _("Clear"),
        "export_svg": _("Export ladder (SVG)"),
        "export_pcap": _("Export capture (pcapng)"),
        "theme": _("Light/dark"),
        "paused": _("paused; updates waiting: {count}"),
        "dropped": _("updates skipped because the page fell behind: {count}"),
        "packets": _("packets: {count}"),
        "not_drawn": _("not drawn, too fast to draw: {count}"),
        "connected": _("connected"),
        "disconnected": _("connection to socklab live lost; reload the page"),
        "retransmission": _("retransmission"),
        "datagram": _("datagram"),
        "kind_greeting": _("greeting"),
        "kind_upper": _("request U:"),
        "kind_lower": _("request L:"),
        "kind_close": _("request C:"),
        "kind_error": _("error reply"),
        "kind_reply": _("reply"),
        "kind_text": _("message"),
        "fragment_start": _("begins here, continues in a later segment"),
        "fragment_middle": _("middle part of a message"),
        "fragment_end": _("ends a message begun earlier"),
        "fate_lost": _("lost in the relay: it never came out"),
        "fate_duplicated": _("duplicated by the relay: it came out twice"),
        "fate_reordered": _("reordered by the relay: a later datagram came out before it"),
        "earlier_hidden": _("earlier arrows not shown: {count}"),
        "trace_hint": _(
            "recv() boundaries: start a socklab program with --trace and SOCKLAB_LIVE={address} in its environment"
        ),
        "recv_call": _("{call}() #{number} returned {count} bytes: {first}–{last}"),
        "recv_end": _("{call}() #{number} returned 0 bytes: the peer closed its side"),
        "segment_bytes": _("segment bytes {first}–{last}"),
    }


def privileged_command(args: argparse.Namespace) -> str:
    """The command line that captures packets too: this one, run as root."""
    words = ["sudo", ".venv/bin/socklab", "live"]
    for port in args.port:
        words += ["--port", str(port)]
    if args.tcp or args.udp:
        words.append("--tcp" if args.tcp else "--udp")
    if args.iface != "lo":
        words += ["--iface", args.iface]
    return " ".join(words)


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    try:
        from socklab.tools.live.server import LiveConfig, LiveServer, is_loopback
    except ImportError as error:
        if error.name is None or not error.name.startswith("aiohttp"):
            raise
        env.fail(
            _("the web server of the 'live' extra is not installed: pip install 'socklab[live]'")
        )
        return ExitStatus.ERROR
    host, port = args.http
    token = None if is_loopback(host) else secrets.token_urlsafe(24)
    config = LiveConfig(
        host=host,
        port=port,
        protocols=frozenset({"tcp"} if args.tcp else {"udp"} if args.udp else {"tcp", "udp"}),
        ports=tuple(dict.fromkeys(args.port)),
        interface=args.iface,
        token=token,
        labels=page_labels(),
        language=current_language(),
        sudo_hint=privileged_command(args),
    )
    try:
        server = LiveServer(config)
    except AddressInUseError:
        env.fail(
            _(
                "Port {port} for the page is already in use: choose another with --http, or --http :0 for a free one."
            ).format(port=port)
        )
        return ExitStatus.ADDRESS_IN_USE
    server.start()
    shown_host = host if token is not None else server.address[0]
    url = f"http://{format_endpoint(shown_host, server.address[1])}/"
    if token is not None:
        url += f"?token={token}"

    def announce() -> None:
        env.say(_("socklab live: {url}").format(url=url))
        if server.trace_address is not None:
            env.say(
                _(
                    "recv() calls of traced programs: SOCKLAB_LIVE={address} socklab ... --trace"
                ).format(address=format_endpoint(*server.trace_address))
            )
        env.say(_("Press Ctrl+C to stop."))
        if args.open:
            webbrowser.open(url)

    wait_until_stopped(server, announce)
    return ExitStatus.OK
