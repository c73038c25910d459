"""The lecture's P2P chat: every peer listens and connects; threads or selectors underneath.

`MODELS` maps the `--model` names to the drivers; both run the same sans-I/O core
(`socklab.protocol.chat`) and differ only in how they wait for sockets.
"""

from __future__ import annotations

from socklab.apps.chat.peer import ChatConfig, ChatObserver, ChatPeer
from socklab.apps.chat.selector_loop import SelectorChatPeer
from socklab.apps.chat.threaded import ThreadedChatPeer

MODELS: dict[str, type[ChatPeer]] = {
    "threads": ThreadedChatPeer,
    "selectors": SelectorChatPeer,
}
DEFAULT_MODEL = "threads"


def start_chat_peer(model: str, config: ChatConfig, observer: ChatObserver) -> ChatPeer:
    """Bind, listen and start serving (raises socklab errors, e.g. AddressInUseError)."""
    peer = MODELS[model](config, observer)
    peer.start()
    return peer


__all__ = ["DEFAULT_MODEL", "MODELS", "ChatConfig", "ChatPeer", "start_chat_peer"]
