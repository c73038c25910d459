"""Lesson `datagram`: UDP through a bad network (`socklab impair`), a naive and a careful client.

The converter's UDP server and an impair relay (20 % loss, 20 % duplication, 30 % reordering,
seed 7) run in this process. The plain client of the slides sends one datagram and takes the
next datagram as its answer: it waits in vain for lost ones and prints stale duplicates as the
answers to later requests. The retrying client (request ids, retransmission) gets every answer
once and in order, and counts what it set aside.
"""

from __future__ import annotations

from socklab.apps.demo_topics.narration import TIMEOUT_S, Say, heading, observe, step
from socklab.clients.converter_client import DatagramConverterClient
from socklab.errors import NetworkTimeoutError
from socklab.i18n import _, format_number
from socklab.protocol.retransmission import Answered
from socklab.runtimes import DEFAULT_RUNTIME, serve
from socklab.runtimes.config import ServerConfig
from socklab.tools.impair import FaultSettings, ImpairConfig, start_impair

# Long enough for loopback (microseconds), short enough that the lost ones do not drag.
PLAIN_WAIT_S = 0.3


def demo_datagram(say: Say) -> bool:
    """UDP through `socklab impair`: the plain client stumbles, the retrying client does not."""
    heading(say, _("Datagrams through a bad network (socklab impair)"))
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
            step(
                say,
                _("relay on port {port}: lost 20 %, duplicated 20 %, reordered 30 %").format(
                    port=port
                ),
            )
            step(
                say,
                _("plain client, one datagram per request, {seconds} s for each answer:").format(
                    seconds=format_number(PLAIN_WAIT_S, decimals=None)
                ),
            )
            troubles = 0
            with DatagramConverterClient(host, port, timeout_s=PLAIN_WAIT_S) as plain:
                for word in words:
                    try:
                        reply = plain.request(b"U:" + word.encode()).decode()
                    except NetworkTimeoutError:
                        reply, troubles = _("(nothing: lost)"), troubles + 1
                    else:
                        if reply != word.upper():
                            troubles += 1
                            reply += "  <- " + _("wrong: the answer to another request")
                    step(say, f"  U:{word} -> {reply}")
            step(say, _("retrying client with request ids (--retries 10):"))
            with DatagramConverterClient(host, port, timeout_s=TIMEOUT_S) as retrying:
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
                step(say, f"  U:{word} -> {reply}")
            if stats is not None:
                step(
                    say,
                    _(
                        "retries: {retries}; set aside: {duplicates} duplicate and {reordered} reordered replies"
                    ).format(
                        retries=stats.retries,
                        duplicates=stats.duplicate_replies,
                        reordered=stats.reordered_replies,
                    ),
                )
    observe(
        say,
        _(
            "UDP promises nothing: the plain client met {troubles} lost or mismatched answers."
        ).format(troubles=troubles),
    )
    observe(
        say,
        _(
            "an id in each request, echoed in the reply, plus a resend after a timeout: every answer once, in order."
        ),
    )
    return len(results) == len(words) and all(correct)
