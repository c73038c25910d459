"""The chat's terminal view, driven as a person would: in tmux, typing with send-keys, reading
the screen with capture-pane. The point under test is the lecture's chat problem: a message
that arrives while the user is typing must not break the half-typed input line.

The tmux server runs on its own socket in the test's temporary directory and is killed at the
end, so no tmux session of the user is touched.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.apps.test_chat import ChatProcess
from tests.socklab_process import SocklabProcess, free_port, socklab_command

WAIT_S = 15.0


class Tmux:
    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path

    def run(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-S", str(self.socket_path), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return result.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p")

    def wait_screen(self, pattern: str, timeout_s: float = WAIT_S) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            screen = self.screen()
            if re.search(pattern, screen, re.M):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not on screen within {timeout_s} s:\n{screen}")
            time.sleep(0.05)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    terminal = Tmux(tmp_path / "tmux.sock")
    yield terminal
    subprocess.run(
        ["tmux", "-S", str(terminal.socket_path), "kill-server"],
        capture_output=True,
        timeout=10,
        check=False,
    )


def test_input_line_stays_intact_while_messages_arrive(
    tmux: Tmux, start_socklab: Callable[..., SocklabProcess]
) -> None:
    port = free_port()
    command = shlex.join(
        [*socklab_command(), "chat", "--name", "alice", "--listen", str(port), "--keepalive", "0.5"]
    )
    tmux.run("new-session", "-d", "-x", "100", "-y", "20", "-e", "LANG=C.UTF-8", command)
    tmux.wait_screen(rf"listening on 127\.0\.0\.1:{port}")
    tmux.wait_screen(r"Buddies: nobody yet")

    bob = ChatProcess(start_socklab(["chat", "--name", "bob", "--peer", f"127.0.0.1:{port}"]))
    tmux.wait_screen(r"^\* bob joined the chat")
    tmux.wait_screen(r"Buddies: ● bob")

    tmux.run("send-keys", "-l", "hello wor")
    tmux.wait_screen(r"^alice> hello wor$")
    bob.say("first while you type", "second while you type")
    screen = tmux.wait_screen(r"^\[bob\] second while you type$")
    lines = screen.splitlines()
    prompt_row = next(i for i, line in enumerate(lines) if line.startswith("alice>"))
    assert lines[prompt_row] == "alice> hello wor", screen
    assert lines.index("[bob] first while you type") < prompt_row
    assert lines.index("[bob] second while you type") < prompt_row

    tmux.run("send-keys", "-l", "ld")
    tmux.run("send-keys", "Enter")
    bob.wait_message(r"^\[alice\] hello world$")

    tmux.run("send-keys", "-l", "/quit")
    tmux.run("send-keys", "Enter")
    bob.wait_notice(r"^alice left the chat$")
