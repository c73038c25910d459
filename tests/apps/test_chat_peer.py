"""The chat peer in-process, on the shared runtimes: peers of different models chat, and a peer
that left and stopped leaves no thread and no descriptor behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import psutil
import pytest

from socklab.apps.chat import MODELS, ChatConfig, ChatPeer, start_chat_peer
from socklab.protocol.chat import BuddyJoined, BuddyLeft, ChatEvent, MessageReceived

WAIT_S = 10.0


class Events:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[ChatEvent] = []

    def __call__(self, event: ChatEvent) -> None:
        with self.lock:
            self.seen.append(event)

    def wait_for(self, predicate: Callable[[ChatEvent], bool], what: str) -> ChatEvent:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            with self.lock:
                found = [event for event in self.seen if predicate(event)]
            if found:
                return found[0]
            time.sleep(0.02)
        raise AssertionError(f"no {what} in {self.seen}")


def leave_and_stop(peer: ChatPeer) -> None:
    peer.leave(1.0)
    assert peer.wait(WAIT_S), "the peer did not finish leaving"
    peer.stop()


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("first", "second"), [(m, n) for m in MODELS for n in MODELS if m != n], ids="-".join
)
def test_peers_of_two_models_chat_and_leave_nothing_behind(first: str, second: str) -> None:
    # One-time costs first, of both models (uvloop keeps a pipe for the process, the escaper
    # its tables): under xdist a worker may meet the second model here for the first time.
    for model in (first, second):
        leave_and_stop(start_chat_peer(model, ChatConfig("warmup"), lambda event: None))
    threads_before = set(threading.enumerate())
    descriptors_before = psutil.Process().num_fds()
    alice_events, bob_events = Events(), Events()
    alice = start_chat_peer(first, ChatConfig("alice"), alice_events)
    bob = start_chat_peer(second, ChatConfig("bob", peers=(alice.address,)), bob_events)
    try:
        alice_events.wait_for(lambda e: isinstance(e, BuddyJoined) and e.name == "bob", "join")
        bob_events.wait_for(lambda e: isinstance(e, BuddyJoined) and e.name == "alice", "join")
        # Sent from this thread (not a runtime's): the node wakes the connection to alice.
        bob.send_text("hello across models")
        received = alice_events.wait_for(lambda e: isinstance(e, MessageReceived), "message")
        assert isinstance(received, MessageReceived)
        assert (received.sender, received.text) == ("bob", "hello across models")
        alice.send_text("and back")
        bob_events.wait_for(
            lambda e: isinstance(e, MessageReceived) and e.text == "and back", "reply"
        )
        leave_and_stop(bob)
        alice_events.wait_for(lambda e: isinstance(e, BuddyLeft) and e.name == "bob", "leave")
    finally:
        bob.stop()
        leave_and_stop(alice)
    deadline = time.monotonic() + WAIT_S
    while not set(threading.enumerate()) <= threads_before:
        assert time.monotonic() < deadline, set(threading.enumerate()) - threads_before
        time.sleep(0.02)
    # Descriptors too may close a moment after their threads end (a socket freed by the
    # collector); a leak stays, so wait for the count within the same deadline. Fewer is fine:
    # something of this worker process from before may have closed meanwhile.
    while psutil.Process().num_fds() > descriptors_before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert psutil.Process().num_fds() <= descriptors_before
