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
    say(
        _(
            "Done. Try it yourself: 'socklab converter server' in one terminal, 'socklab converter client' in another."
        )
    )
    return ok
