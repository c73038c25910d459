"""The chat's lesson in `socklab demo`: three peers on loopback form a mesh and exchange a line.

Each peer runs in this process on a port the OS picks; carol knows only bob, so the demo shows
an introduction at work. Everything is bounded by TIMEOUT_S and stopped before returning.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from socklab.apps.chat import ChatConfig, ChatPeer, start_chat_peer
from socklab.apps.demo_topics.narration import TIMEOUT_S, Say, heading, observe, step
from socklab.i18n import _
from socklab.protocol.chat import BuddyJoined, ChatEvent, MessageReceived, Presence


def demo_chat(say: Say) -> bool:
    heading(say, _("P2P chat: every peer is client and server (lecture: threads and selectors)"))
    lock = threading.Lock()
    received: dict[str, list[str]] = {}

    def observer(me: str) -> Callable[[ChatEvent], None]:
        def show(event: ChatEvent) -> None:
            with lock:
                if isinstance(event, MessageReceived):
                    received.setdefault(me, []).append(f"[{event.sender}] {event.text}")
                    step(say, f"{me}: [{event.sender}] {event.text}")
                elif isinstance(event, BuddyJoined):
                    step(say, _("{me}: {name} joined").format(me=me, name=event.name))

        return show

    peers: list[ChatPeer] = []
    try:
        alice = start_chat_peer("threads", ChatConfig("alice"), observer("alice"))
        peers.append(alice)
        bob = start_chat_peer(
            "selectors", ChatConfig("bob", peers=(alice.address,)), observer("bob")
        )
        peers.append(bob)
        carol = start_chat_peer(
            "threads", ChatConfig("carol", peers=(bob.address,)), observer("carol")
        )
        peers.append(carol)
        deadline = time.monotonic() + TIMEOUT_S
        while not all(_online(peer) == 2 for peer in peers):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        alice.send_text("hello, group")
        while not all(received.get(name) for name in ("bob", "carol")):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
    finally:
        for peer in peers:
            peer.leave(1.0)
        for peer in peers:
            peer.wait(TIMEOUT_S)
            peer.stop()
    observe(
        say,
        _(
            "carol was given only bob's address; bob introduced alice, so all three hold one socket per buddy."
        ),
    )
    observe(
        say,
        _(
            "alice (threads) and bob (selectors) speak the same frames: the model is only how a program waits."
        ),
    )
    return received.get("bob") == ["[alice] hello, group"] == received.get("carol")


def _online(peer: ChatPeer) -> int:
    return sum(1 for buddy in peer.buddies() if buddy.presence is Presence.ONLINE)
