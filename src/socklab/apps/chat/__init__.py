"""The lecture's P2P chat: every peer listens and connects, served by a shared runtime.

`MODELS` are the `--model` names: runtimes of `socklab.runtimes.RUNTIMES` that can serve a
connection they did not accept (`ServerHandle.adopt()`). Every model runs the same sans-I/O
core (`socklab.protocol.chat`) through `apps/chat/peer.py`; they differ only in how they wait
for sockets.
"""

from __future__ import annotations

from socklab.apps.chat.peer import ChatConfig, ChatObserver, ChatPeer
from socklab.runtimes import RUNTIMES

# Every model of the registry that serves dialled connections too.
MODELS: tuple[str, ...] = tuple(
    sorted(name for name, info in RUNTIMES.items() if info.adopts_connections)
)
DEFAULT_MODEL = "threads"


def start_chat_peer(model: str, config: ChatConfig, observer: ChatObserver) -> ChatPeer:
    """Bind, listen and start serving (raises socklab errors, e.g. AddressInUseError)."""
    peer = ChatPeer(model, config, observer)
    peer.start()
    return peer


__all__ = ["DEFAULT_MODEL", "MODELS", "ChatConfig", "ChatPeer", "start_chat_peer"]
