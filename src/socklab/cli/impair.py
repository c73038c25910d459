"""`socklab impair`: relay TCP or UDP to a target through reproducible faults.

Parses and checks every value (one clear line per mistake), starts the relay from
`socklab.tools.impair`, prints the readiness line, the statistics every `--stats-every` seconds
and once more on exit (Ctrl+C or SIGTERM).
"""

from __future__ import annotations

import argparse
import math
import random

from socklab.cli.arguments import (
    add_loop,
    add_transport_choice,
    bounded_number,
    host_port,
    non_negative_int,
    positive_int,
    positive_seconds,
    whole_number,
)
from socklab.cli.environment import Environment
from socklab.cli.logfile import add_log_option
from socklab.cli.serving import wait_until_stopped
from socklab.cli.status import ExitStatus
from socklab.errors import UsageError
from socklab.i18n import _
from socklab.protocol.endpoints import format_endpoint
from socklab.tools.impair import (
    FaultSettings,
    ImpairConfig,
    ImpairStats,
    TargetUnreachable,
    start_impair,
)

UDP_ONLY = ("loss", "duplicate", "reorder")
TCP_ONLY = ("slice", "slice_delay", "limit_bytes", "reset_after")
RATE_SUFFIXES = {"k": 1000, "m": 1000_000, "g": 1000_000_000}


probability = bounded_number(
    float,
    lambda value: 0.0 <= value <= 1.0,  # also refuses nan
    not_a_number=lambda text: _("'{text}' is not a probability (a number from 0 to 1)").format(
        text=text
    ),
    out_of_range=lambda text, _value: _(
        "probability {text} is outside 0 to 1 (0.3 means 30 %)"
    ).format(text=text),
    name="probability",
)
milliseconds = bounded_number(
    float,
    lambda value: value >= 0 and math.isfinite(value),
    not_a_number=lambda text: _("'{text}' is not a number of milliseconds").format(text=text),
    out_of_range=lambda text, _value: _("{text} ms must be 0 or more, and finite").format(
        text=text
    ),
    name="milliseconds",
)


def _rate(text: str) -> int:
    """Bytes per second; k, M and G multiply by 1000, 10^6, 10^9 (100k = 100,000 B/s)."""
    digits, factor = text, 1
    if text and text[-1].lower() in RATE_SUFFIXES:
        digits, factor = text[:-1], RATE_SUFFIXES[text[-1].lower()]
    return int(digits, 10) * factor


bytes_per_second = bounded_number(
    _rate,
    lambda value: value >= 1,
    not_a_number=lambda text: _(
        "'{text}' is not a rate in bytes per second (like 100000 or 100k)"
    ).format(text=text),
    out_of_range=lambda text, _value: _("rate {text} must be at least 1 byte per second").format(
        text=text
    ),
    name="bytes_per_second",
)
seed_number = bounded_number(
    whole_number,
    lambda _value: True,  # any seed, negative ones too
    not_a_number=lambda text: _("'{text}' is not a whole number").format(text=text),
    out_of_range=lambda _text, _value: "",
    name="seed_number",
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = _(
        "Relay connections or datagrams from --listen to --target and impair them on the way. "
        "UDP: --loss, --duplicate, --reorder (like netem). TCP: --slice, --limit-bytes, "
        "--reset-after (like Toxiproxy). Both: --delay, --jitter, --rate. No root needed."
    )
    add_transport_choice(parser, tcp_help=_("relay TCP"), udp_help=_("relay UDP"))
    parser.add_argument(
        "--listen",
        type=host_port,
        required=True,
        metavar="[HOST:]PORT",
        help=_("where clients connect (host 127.0.0.1 if omitted; port 0: any free port)"),
    )
    parser.add_argument(
        "--target",
        type=host_port,
        required=True,
        metavar="HOST:PORT",
        help=_("the server to relay to"),
    )
    faults = parser.add_argument_group(_("faults to inject"))
    faults.add_argument(
        "--loss",
        type=probability,
        default=0.0,
        metavar="P",
        help=_("UDP: drop each datagram with probability P (0 to 1)"),
    )
    faults.add_argument(
        "--duplicate",
        type=probability,
        default=0.0,
        metavar="P",
        help=_("UDP: send each datagram twice with probability P"),
    )
    faults.add_argument(
        "--reorder",
        type=probability,
        default=0.0,
        metavar="P",
        help=_("UDP: with probability P, hold a datagram back until the next one has passed"),
    )
    faults.add_argument(
        "--delay",
        type=milliseconds,
        default=0.0,
        metavar="MS",
        help=_("added to each round trip (split over both directions with --direction both)"),
    )
    faults.add_argument(
        "--jitter",
        type=milliseconds,
        default=0.0,
        metavar="MS",
        help=_("vary the delay by up to ± this much (at most --delay)"),
    )
    faults.add_argument(
        "--rate",
        type=bytes_per_second,
        metavar="BYTES/S",
        help=_("limit each direction to this many bytes per second (100k = 100,000)"),
    )
    faults.add_argument(
        "--slice",
        type=positive_int,
        metavar="BYTES",
        help=_("TCP: cut the stream into pieces of this many bytes, each its own write"),
    )
    faults.add_argument(
        "--slice-delay",
        type=milliseconds,
        metavar="MS",
        help=_("TCP: wait this long between slices (default 0)"),
    )
    faults.add_argument(
        "--limit-bytes",
        type=non_negative_int,
        metavar="N",
        help=_("TCP: close the connection after exactly N bytes"),
    )
    faults.add_argument(
        "--reset-after",
        type=non_negative_int,
        metavar="BYTES",
        help=_("TCP: reset the connection (RST) after this many bytes"),
    )
    parser.add_argument(
        "--seed",
        type=seed_number,
        metavar="N",
        help=_("seed of the random decisions: the same seed repeats a run (default: random)"),
    )
    parser.add_argument(
        "--direction",
        choices=("up", "down", "both"),
        default="both",
        help=_("impair client->target (up), target->client (down) or both (default: both)"),
    )
    add_loop(parser, help=_("event loop of the relay (default: uvloop where installed)"))
    parser.add_argument(
        "--stats-every",
        type=positive_seconds,
        metavar="S",
        help=_("print the counts every S seconds (always printed on exit)"),
    )
    # graceful_stop: Ctrl+C and SIGTERM stop the relay and it exits 0 (cli.serving).
    add_log_option(parser)
    # Its own port is chosen with --listen: error lines name that flag, not --port.
    parser.set_defaults(handler=run, graceful_stop=True, port_option="--listen")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _given(args: argparse.Namespace, name: str) -> bool:
    value = getattr(args, name)
    return value is not None and value != 0.0


def build_settings(args: argparse.Namespace) -> FaultSettings:
    """The fault settings from the parsed options; UsageError for combinations that cannot work."""
    if args.transport == "tcp":
        for name in UDP_ONLY:
            if _given(args, name):
                raise UsageError(
                    _(
                        "{flag} works on UDP only: TCP retransmits what is lost, so a TCP relay cannot lose, duplicate or reorder bytes. Use --udp, or --reset-after / --limit-bytes for TCP."
                    ).format(flag=_flag(name))
                )
    else:
        for name in TCP_ONLY:
            if getattr(args, name) is not None:
                raise UsageError(
                    _("{flag} works on TCP only: UDP keeps each datagram whole. Use --tcp.").format(
                        flag=_flag(name)
                    )
                )
    if args.jitter > args.delay:
        raise UsageError(
            _(
                "--jitter {jitter} ms is more than --delay {delay} ms: the delay varies by ± jitter, so give a delay of at least {jitter} ms."
            ).format(jitter=_number(args.jitter), delay=_number(args.delay))
        )
    if args.slice_delay is not None and args.slice is None:
        raise UsageError(_("--slice-delay needs --slice BYTES (the size of each slice)."))
    if args.target[1] == 0:
        raise UsageError(_("--target needs a port from 1 to 65535, not 0."))
    if args.listen == args.target:
        raise UsageError(
            _(
                "--listen and --target are the same address {address}: the relay would send to itself."
            ).format(address=format_endpoint(*args.target))
        )
    return FaultSettings(
        loss=args.loss,
        duplicate=args.duplicate,
        reorder=args.reorder,
        delay_s=args.delay / 1000.0,
        jitter_s=args.jitter / 1000.0,
        rate_bytes_per_s=args.rate,
        slice_bytes=args.slice,
        slice_delay_s=(args.slice_delay or 0.0) / 1000.0,
        limit_bytes=args.limit_bytes,
        reset_after_bytes=args.reset_after,
    )


def _number(value: float) -> str:
    return f"{value:g}"


def describe_faults(faults: FaultSettings) -> str:
    parts: list[str] = []
    for value, template in (
        (faults.loss, _("loss {percent} %")),
        (faults.duplicate, _("duplicate {percent} %")),
        (faults.reorder, _("reorder {percent} %")),
    ):
        if value:
            parts.append(template.format(percent=_number(value * 100)))
    if faults.delay_s:
        delay = _("delay {ms} ms per round trip").format(ms=_number(faults.delay_s * 1000))
        if faults.jitter_s:
            delay += f" ± {_number(faults.jitter_s * 1000)} ms"
        parts.append(delay)
    if faults.rate_bytes_per_s is not None:
        parts.append(_("rate {rate} bytes/s").format(rate=faults.rate_bytes_per_s))
    if faults.slice_bytes is not None:
        parts.append(
            _("slices of {size} bytes, {ms} ms apart").format(
                size=faults.slice_bytes, ms=_number(faults.slice_delay_s * 1000)
            )
        )
    if faults.limit_bytes is not None:
        parts.append(_("close after {n} bytes").format(n=faults.limit_bytes))
    if faults.reset_after_bytes is not None:
        parts.append(_("reset after {n} bytes").format(n=faults.reset_after_bytes))
    return ", ".join(parts) if parts else _("none (a plain relay)")


def describe_stats(stats: ImpairStats) -> str:
    if stats.transport == "udp":
        ways = []
        # "up" and "down" stay untranslated: they are the values of --direction.
        for label, counts in (("up", stats.up_datagrams), ("down", stats.down_datagrams)):
            ways.append(
                _(
                    "{way}: {received} datagrams in, {forwarded} out ({lost} lost, {duplicated} duplicated, {reordered} reordered, {dropped} dropped on full queues)"
                ).format(
                    way=label,
                    received=counts.received,
                    forwarded=counts.forwarded,
                    lost=counts.lost,
                    duplicated=counts.duplicated,
                    reordered=counts.reordered,
                    dropped=counts.dropped_queue_full,
                )
            )
        clients = _("clients: {total} ({open} active, {evicted} evicted)").format(
            total=stats.clients_total, open=stats.clients_open, evicted=stats.clients_refused
        )
    else:
        ways = []
        for label, stream in (("up", stats.up_bytes), ("down", stats.down_bytes)):
            ways.append(
                _(
                    "{way}: {received} bytes in, {forwarded} out in {pieces} writes ({discarded} discarded)"
                ).format(
                    way=label,
                    received=stream.bytes_received,
                    forwarded=stream.bytes_forwarded,
                    pieces=stream.pieces,
                    discarded=stream.bytes_discarded,
                )
            )
        clients = _(
            "connections: {total} ({open} open, {refused} refused, {limit} closed at the limit, {resets} reset)"
        ).format(
            total=stats.clients_total,
            open=stats.clients_open,
            refused=stats.clients_refused,
            limit=stats.closed_at_limit,
            resets=stats.resets_sent,
        )
    line = _("impair stats: {ways}; {clients}").format(ways="; ".join(ways), clients=clients)
    if stats.target_failures:
        line += "; " + _("target unreachable {count} times").format(count=stats.target_failures)
    return line


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    faults = build_settings(args)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1_000_000)

    def on_event(event: TargetUnreachable) -> None:
        env.warn(
            _("Cannot reach the target {target}: {detail}").format(
                target=format_endpoint(*event.target), detail=event.detail
            )
        )

    config = ImpairConfig(
        transport=args.transport,
        listen=args.listen,
        target=args.target,
        faults=faults,
        direction=args.direction,
        seed=seed,
        stats_every_s=args.stats_every,
        on_stats=lambda stats: env.say(describe_stats(stats)),
        on_event=on_event,
        event_loop=args.loop,
    )
    relay = start_impair(config)

    def announce() -> None:
        env.say(
            _("impair listening on {listen} -> {target} ({transport}, seed {seed})").format(
                listen=format_endpoint(*relay.address),
                target=format_endpoint(*args.target),
                transport=args.transport.upper(),
                seed=seed,
            )
        )
        env.say(
            _("Faults ({direction}): {faults}").format(
                direction=args.direction, faults=describe_faults(faults)
            )
        )
        env.say(_("Press Ctrl+C to stop."))

    wait_until_stopped(relay, announce)
    env.say(describe_stats(relay.snapshot()))
    return ExitStatus.OK
