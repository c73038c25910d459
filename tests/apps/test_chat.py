"""`socklab chat` end to end: several real peers as subprocesses on loopback, both models.

Peers run in scriptable mode (stdin is a pipe): lines written to a peer's stdin are its
messages, `[name] text` lines on its stdout are what it received, notices are on stderr.
Keepalive is shortened with the hidden `--keepalive` option so fault tests stay fast.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence

import psutil
import pytest

from tests.socklab_process import SocklabProcess, child_environment, free_port, socklab_command

MODELS = ["threads", "selectors", "asyncio"]
WAIT_S = 15.0


class ChatProcess:
    """A scriptable chat peer: write lines, wait for received messages and notices."""

    def __init__(self, process: SocklabProcess) -> None:
        self.process = process
        self.address = self.wait_notice(r"listening on 127\.0\.0\.1:(\d+)")

    @property
    def port(self) -> int:
        return int(self.address.group(1))

    @property
    def peer_arg(self) -> str:
        return f"127.0.0.1:{self.port}"

    def say(self, *lines: str) -> None:
        stdin = self.process.proc.stdin
        assert stdin is not None
        stdin.write("".join(line + "\n" for line in lines).encode())
        stdin.flush()

    def close_input(self) -> None:
        assert self.process.proc.stdin is not None
        self.process.proc.stdin.close()

    def _wait(self, lines: list[str], pattern: str, count: int, timeout_s: float) -> re.Match[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        while True:
            matches = [m for m in map(regex.search, list(lines)) if m]
            if len(matches) >= count:
                return matches[count - 1]
            if time.monotonic() > deadline or self.process.proc.poll() is not None:
                time.sleep(0.2)  # let the reader threads catch the last lines
                raise AssertionError(
                    self.process._explain(f"{count}x {pattern!r} not seen within {timeout_s} s")
                )
            time.sleep(0.02)

    def wait_notice(self, pattern: str, count: int = 1, timeout_s: float = WAIT_S) -> re.Match[str]:
        return self._wait(self.process.stderr_lines, pattern, count, timeout_s)

    def wait_message(
        self, pattern: str, count: int = 1, timeout_s: float = WAIT_S
    ) -> re.Match[str]:
        return self._wait(self.process.stdout_lines, pattern, count, timeout_s)

    def wait_received(self, total: int, timeout_s: float = WAIT_S) -> None:
        self.wait_message(r"^\[", total, timeout_s)

    def received(self) -> list[tuple[str, str]]:
        pairs = []
        for line in self.process.stdout_lines:
            match = re.fullmatch(r"\[([^\]]+)\] (.*)", line)
            assert match, f"stdout line not in the [name] text format: {line!r}"
            pairs.append((match.group(1), match.group(2)))
        return pairs

    def notices(self) -> list[str]:
        return list(self.process.stderr_lines)


@pytest.fixture
def start_chat(
    start_socklab: Callable[..., SocklabProcess],
) -> Iterator[Callable[..., ChatProcess]]:
    def start(name: str, *extra: str, model: str = "threads") -> ChatProcess:
        args = ["chat", "--name", name, "--model", model, "--keepalive", "0.5", *extra]
        return ChatProcess(start_socklab(args))

    yield start


def _joined(peer: ChatProcess, count: int) -> None:
    peer.wait_notice(r" joined the chat \(127\.0\.0\.1:\d+\)$", count)


@pytest.mark.parametrize("model", MODELS)
def test_a_chain_of_three_becomes_a_mesh_and_every_message_arrives_once_in_order(
    start_chat: Callable[..., ChatProcess], model: str
) -> None:
    alice = start_chat("alice", model=model)
    bob = start_chat("bob", "--peer", alice.peer_arg, model=model)
    carol = start_chat("carol", "--peer", bob.peer_arg, model=model)  # knows only bob
    peers = {"alice": alice, "bob": bob, "carol": carol}
    for peer in peers.values():
        _joined(peer, 2)
    alice.wait_notice(r"^carol joined")  # introduced through bob
    rounds = 6
    for i in range(rounds):
        for name, peer in peers.items():
            peer.say(f"{name} says {i}")
    for peer in peers.values():
        peer.wait_received(2 * rounds)
    for peer in peers.values():
        peer.close_input()
    for name, peer in peers.items():
        assert peer.process.wait(WAIT_S) == 0
        got = peer.received()
        assert len(got) == 2 * rounds, got
        for sender in set(peers) - {name}:
            assert [text for who, text in got if who == sender] == [
                f"{sender} says {i}" for i in range(rounds)
            ]
        assert not [n for n in peer.notices() if "not delivered" in n]


@pytest.mark.parametrize("model", MODELS)
def test_a_killed_peer_is_reported_as_left_and_the_rest_carry_on(
    start_chat: Callable[..., ChatProcess], model: str
) -> None:
    alice = start_chat("alice", model=model)
    bob = start_chat("bob", "--peer", alice.peer_arg, model=model)
    carol = start_chat("carol", "--peer", alice.peer_arg, model=model)
    for peer in (alice, bob, carol):
        _joined(peer, 2)
    bob.say("bob was here")
    alice.wait_message(r"^\[bob\] bob was here$")
    os.kill(bob.process.pid, signal.SIGKILL)
    bob.process.proc.wait(WAIT_S)
    for peer in (alice, carol):
        peer.wait_notice(r"^bob left the chat \(connection lost")
    alice.say("still here?")
    carol.wait_message(r"^\[alice\] still here\?$")
    alice.wait_notice(r"^bob: away; message #1 will be delivered when they return$")
    carol.say("yes")
    alice.wait_message(r"^\[carol\] yes$")
    alice.close_input()
    assert alice.process.wait(WAIT_S) == 0
    # Nothing typed is lost silently: bob never got alice's message, and she is told.
    alice.wait_notice(r"^Message #1 was not delivered to bob \(the buddy is away\): still here\?$")
    carol.wait_notice(r"^alice left the chat$")


@pytest.mark.parametrize("model", MODELS)
def test_garbage_from_a_raw_socket_is_disconnected_and_the_others_keep_chatting(
    start_chat: Callable[..., ChatProcess], model: str
) -> None:
    alice = start_chat("alice", model=model)
    bob = start_chat("bob", "--peer", alice.peer_arg, model=model)
    _joined(alice, 1)
    with socket.create_connection(("127.0.0.1", alice.port), timeout=WAIT_S) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: chat\r\n\r\n")
        alice.wait_notice(
            r"^Disconnected 127\.0\.0\.1:\d+: message of 1,195,725,856 bytes exceeds the 65,536-byte limit$"
        )
        received = b""
        while chunk := raw.recv(4096):  # alice's hello, a bye saying why, then EOF
            received += chunk
        assert b'"type":"bye"' in received
    bob.say("still fine")
    alice.wait_message(r"^\[bob\] still fine$")
    assert not [n for n in alice.notices() if "bob left" in n]


def _established_between(pid: int, port_a: int, port_b: int) -> int:
    count = 0
    for conn in psutil.Process(pid).net_connections(kind="tcp"):
        if conn.status != psutil.CONN_ESTABLISHED or not conn.raddr:
            continue
        if {conn.laddr.port, conn.raddr.port} & {port_a, port_b}:
            count += 1
    return count


def test_two_peers_dialing_each_other_at_once_keep_exactly_one_socket(
    start_socklab: Callable[..., SocklabProcess],
) -> None:
    port_a, port_b = free_port(), free_port()
    alice = ChatProcess(
        start_socklab(
            ["chat", "--name", "alice", "--listen", str(port_a), "--peer", f"127.0.0.1:{port_b}"]
        )
    )
    bob = ChatProcess(
        start_socklab(
            [
                "chat",
                "--name",
                "bob",
                "--listen",
                str(port_b),
                "--peer",
                f"127.0.0.1:{port_a}",
                "--model",
                "selectors",
            ]
        )
    )
    alice.wait_notice(r"^bob joined")
    bob.wait_notice(r"^alice joined")
    deadline = time.monotonic() + WAIT_S
    while _established_between(alice.process.pid, port_a, port_b) != 1:
        assert time.monotonic() < deadline, "duplicate connection was never closed"
        time.sleep(0.05)
    alice.say("one socket")
    bob.wait_message(r"^\[alice\] one socket$")
    assert _established_between(alice.process.pid, port_a, port_b) == 1
    assert _established_between(bob.process.pid, port_a, port_b) == 1
    assert len([n for n in alice.notices() if "joined" in n]) == 1
    assert not [n for n in alice.notices() + bob.notices() if "left" in n]


def test_private_messages_nick_and_who(start_chat: Callable[..., ChatProcess]) -> None:
    alice = start_chat("alice")
    bob = start_chat("bob", "--peer", alice.peer_arg)
    carol = start_chat("carol", "--peer", alice.peer_arg)
    for peer in (alice, bob, carol):
        _joined(peer, 2)
    alice.say(
        "/msg bob just for you", "/msg zed hi", "/nick alicia", "/who", "/frobnicate", "for all"
    )
    bob.wait_message(r"^\[alicia\] for all$")
    # The sender sees its private message once, with the recipient; an unknown one is named.
    # (Waited for: alice's own stdout is read by another thread than bob's.)
    alice.wait_message(r"^→ bob: just for you$")
    assert [line for line in alice.process.stdout_lines if "just for you" in line] == [
        "→ bob: just for you"
    ]
    alice.wait_notice(r'^Not sent: nobody named "zed" is here; /who lists who is$')
    assert not [line for line in alice.process.stdout_lines if "hi" in line.split()]
    carol.wait_message(r"^\[alicia\] for all$")
    assert bob.received()[0] == ("alice", "just for you")
    assert carol.received() == [("alicia", "for all")]
    carol.wait_notice(r"^alice is now known as alicia$")
    alice.wait_notice(r"^bob: online, 127\.0\.0\.1:\d+$")
    alice.wait_notice(r"^Unknown command /frobnicate; try /help$")


def test_log_file_records_the_conversation(
    start_chat: Callable[..., ChatProcess], tmp_path: object
) -> None:
    log = os.path.join(str(tmp_path), "chat.log")
    alice = start_chat("alice", "--log", log)
    bob = start_chat("bob", "--peer", alice.peer_arg)
    _joined(alice, 1)
    bob.say("for the record")
    alice.wait_message(r"for the record")
    alice.close_input()
    assert alice.process.wait(WAIT_S) == 0
    with open(log, encoding="utf-8") as handle:
        text = handle.read()
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[bob\] for the record$", text, re.M)
    assert re.search(r"^\S+ \S+ \* bob joined the chat", text, re.M)


def test_stay_keeps_the_peer_after_the_end_of_input(start_chat: Callable[..., ChatProcess]) -> None:
    alice = start_chat("alice", "--stay")
    alice.close_input()
    bob = start_chat("bob", "--peer", alice.peer_arg)
    bob.say("you still there?")
    alice.wait_message(r"^\[bob\] you still there\?$")
    alice.process.send_signal(signal.SIGTERM)
    assert alice.process.wait(WAIT_S) == 0
    bob.wait_notice(r"^alice left the chat$")


def _run(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*socklab_command(), *args],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
        env=child_environment(),
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "two words"], r"'two words' is not a valid chat name"),
        (["--name", "a", "--peer", "127.0.0.1:0"], r"a peer's port cannot be 0"),
        (["--name", "a", "--log", "/nonexistent/dir/chat.log"], r"cannot open log file"),
    ],
)
def test_bad_options_are_one_clear_line(args: list[str], message: str) -> None:
    result = _run(["chat", *args])
    assert result.returncode == 2, result.stderr
    assert re.search(message, result.stderr)
    assert "Traceback" not in result.stderr


def test_a_taken_port_is_one_clear_line() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        result = _run(["chat", "--name", "a", "--listen", str(holder.getsockname()[1])])
    assert result.returncode == 6, result.stderr
    assert "Traceback" not in result.stderr


def test_demo_chat_runs_three_peers() -> None:
    result = _run(["demo", "chat"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[alice] hello, group" in result.stdout


def test_a_frozen_peer_is_found_by_keepalive_and_reconnected_when_it_thaws(
    start_chat: Callable[..., ChatProcess],
) -> None:
    alice = start_chat("alice")
    bob = start_chat("bob", "--peer", alice.peer_arg, model="selectors")
    _joined(alice, 1)
    # SIGSTOP: bob's kernel still answers TCP, but bob says nothing: only keepalive can tell.
    bob.process.send_signal(signal.SIGSTOP)
    try:
        alice.wait_notice(r"^bob left the chat \(vanished: nothing received for [\d.]+ s\)")
    finally:
        bob.process.send_signal(signal.SIGCONT)
    alice.wait_notice(r"^bob is back \(127\.0\.0\.1:\d+\)$")
    alice.say("welcome back")
    bob.wait_message(r"^\[alice\] welcome back$")


def test_a_restarted_peer_is_reconnected_with_backoff(
    start_chat: Callable[..., ChatProcess],
) -> None:
    alice = start_chat("alice")
    bob_port = str(free_port())
    bob = start_chat("bob", "--listen", bob_port, "--peer", alice.peer_arg)
    _joined(alice, 1)
    os.kill(bob.process.pid, signal.SIGKILL)
    bob.process.proc.wait(WAIT_S)
    alice.wait_notice(r"^bob left the chat \(connection lost")
    # bob comes back on the same port, knowing nobody: alice's reconnect attempts find him.
    bob2 = start_chat("bob", "--listen", bob_port)
    alice.wait_notice(r"^bob joined the chat", count=2)
    bob2.wait_notice(r"^alice joined the chat")
    bob2.say("i am new")
    alice.wait_message(r"^\[bob\] i am new$")
