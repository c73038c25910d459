"""The guided tour: the TOPICS registry of `socklab demo`, one lesson each, and the full tour.

Lessons live in `socklab.apps.demo_topics` (one module each); adding a lesson is one entry here.
Servers run in this process on ports the OS picks (port 0), so the tour never collides with a
server the user already runs, and finishes by itself well within a minute.
"""

from __future__ import annotations

from collections.abc import Callable

from socklab.apps.demo_topics.basics import demo_converter, demo_hello, demo_upper
from socklab.apps.demo_topics.chat import demo_chat
from socklab.apps.demo_topics.datagram import demo_datagram
from socklab.apps.demo_topics.handshake import demo_handshake
from socklab.apps.demo_topics.models import demo_models
from socklab.apps.demo_topics.narration import Say
from socklab.apps.demo_topics.ports import demo_ports
from socklab.apps.demo_topics.stream import demo_stream
from socklab.apps.demo_topics.timeout import demo_timeout
from socklab.i18n import _

# In the order of the lessons; the full tour runs them all. `datagram` (UDP through impair)
# and `chat` are registered by their own areas.
TOPICS: dict[str, Callable[[Say], bool]] = {
    "hello": demo_hello,
    "upper": demo_upper,
    "converter": demo_converter,
    "stream": demo_stream,
    "ports": demo_ports,
    "handshake": demo_handshake,
    "timeout": demo_timeout,
    "datagram": demo_datagram,
    "models": demo_models,
    "chat": demo_chat,
}


def run_demo(topic: str | None, say: Say) -> bool:
    """Run one topic, or the whole tour; True when every step behaved as described."""
    selected = [TOPICS[topic]] if topic else list(TOPICS.values())
    say(_("socklab demo: everything runs on this computer (127.0.0.1), on ports the OS picks."))
    ok = all([lesson(say) for lesson in selected])
    say("")
    say(_("Done. Try it yourself: {commands}").format(commands=try_it_yourself(topic)))
    return ok


def try_it_yourself(topic: str | None) -> str:
    """The commands that let a student repeat the lesson just shown (the converter after the
    whole tour)."""
    match topic:
        case "hello":
            return _("'socklab hello server' in one terminal, 'socklab hello client' in another.")
        case "upper":
            return _(
                "'socklab upper server --udp' in one terminal, 'socklab upper client --udp' in another; then both with --tcp."
            )
        case "stream":
            return _(
                "'socklab converter server --framing raw --trace' in one terminal, 'socklab converter client --framing raw U:a L:B' in another; then both with --framing line."
            )
        case "ports":
            return _(
                "'socklab converter server' in one terminal, 'socklab converter client' in a second (type nothing), then 'socklab ports --port 50000 --explain'."
            )
        case "handshake":
            return _(
                "'socklab converter server' in one terminal, 'sudo socklab capture --port 50000 --ladder' in a second, 'socklab converter client U:hi' in a third."
            )
        case "timeout":
            return _(
                "'socklab hello server --receive-timeout 5' in one terminal, 'nc 127.0.0.1 9999' in another, and type nothing: the server's recv() gives up after 5 s."
            )
        case "datagram":
            return _(
                "'socklab converter server --udp' in one terminal, 'socklab impair --udp --listen 50001 --target 127.0.0.1:50000 --loss 0.2' in a second, 'socklab converter client --udp --port 50001 --retries 5 U:a U:b U:c' in a third."
            )
        case "models":
            return _(
                "'socklab converter server --model iterative' in one terminal, 'socklab converter client' in a second (type nothing), 'socklab converter client U:hi' in a third: it waits. Then the server with --model threads."
            )
        case "chat":
            return _(
                "'socklab chat --name alice --listen 5000' in one terminal, 'socklab chat --name bob --peer 127.0.0.1:5000' in another."
            )
    return _("'socklab converter server' in one terminal, 'socklab converter client' in another.")
