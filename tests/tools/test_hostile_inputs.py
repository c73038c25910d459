"""Hostile programs and peers against the new surfaces (docs/RELIABILITY.md, "Hostile peers").

Each test starts the real `socklab` as a subprocess against a hostile program or peer of its
own on loopback, bounded in time, and checks that the bad input is dropped or shown escaped,
that no traceback reaches the user, and that what came after the bad input is not lost.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.fixtures.check_processes import running_fixture
from tests.socklab_process import SocklabProcess, run_socklab

Start = Callable[..., SocklabProcess]

HOSTILE = Path(__file__).resolve().parents[1] / "fixtures" / "hostile"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds the pipe through /proc")
def test_trace_survives_garbage_on_its_event_pipe() -> None:
    """Nested brackets deeper than json decodes once ended trace's reader thread: a traceback
    on stderr, the pipe closed, and every later call of the program missing from the trace."""
    result = run_socklab(
        ["trace", "--", sys.executable, str(HOSTILE / "trace_pipe_garbage.py")], timeout_s=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"
    assert "Traceback" not in result.stderr
    assert "RecursionError" not in result.stderr
    # The program's own calls after the garbage are all traced.
    traced = [line for line in result.stderr.splitlines() if line.startswith("[trace] ")]
    assert any("listen(" in line for line in traced), result.stderr
    assert any("close(" in line for line in traced), result.stderr
    assert "\x1b" not in result.stderr


def _converse(host: str, port: int, data: bytes) -> None:
    """Send `data`, read the replies until the server's close or a quiet second."""
    with socket.create_connection((host, port), timeout=5) as client:
        client.sendall(data)
        client.shutdown(socket.SHUT_WR)
        with contextlib.suppress(TimeoutError):
            while client.recv(65536):
                pass


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (a full disk)")
def test_a_log_that_fills_up_is_one_line_not_a_traceback_per_line(start_socklab: Start) -> None:
    """A peer whose requests fill the disk through -v --log: stdlib logging printed a
    "--- Logging error ---" traceback for every line from then on. Now: one line, once, and the
    server's own lines go on to its terminal."""
    server = start_socklab(["converter", "server", "--port", "0", "-v", "--log", "/dev/full"])
    host, port = server.wait_listening()
    _converse(host, port, b"U:one\nU:two\nU:three\n")
    server.wait_for_line(r"^Connection from 127\.0\.0\.1:\d+ closed")
    assert server.stop() == 0
    errors = "\n".join(server.stderr_lines)
    assert "Traceback" not in errors
    assert "Logging error" not in errors
    problems = [line for line in server.stderr_lines if "log file" in line]
    assert problems == [
        "socklab converter server: cannot write to the log file /dev/full any more: No space "
        "left on device. Lines go on to the terminal only; free space and start again with --log"
    ]
    assert sum("Request from" in line for line in server.stdout_lines) == 3


def test_hostile_bytes_reach_the_log_escaped(start_socklab: Start, tmp_path: Path) -> None:
    """Terminal escapes, NUL and invalid UTF-8 a peer sends are escaped in -v lines and in the
    log alike (a `cat` or `tail -f` of the log must not run them)."""
    log = tmp_path / "server.log"
    server = start_socklab(["upper", "server", "--udp", "--port", "0", "--log", str(log)])
    match = server.wait_for_line(r"^Uppercase server \(UDP\) on ([\d.]+):(\d+)\.")
    host, port = match.group(1), int(match.group(2))
    evil = b"]]><&\x00\x1b[2J\x1b]0;pwn\x07\x9b31m\xff\xed\xa0\x80\xe2\x80\xae"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(5)
        client.sendto(evil, (host, port))
        client.recv(65536)
    server.wait_for_line(r"^From 127\.0\.0\.1:\d+: ")
    assert server.stop() == 0
    raw = log.read_bytes()
    assert b"From 127.0.0.1:" in raw
    for byte in (b"\x00", b"\x1b", b"\x07", b"\x9b", b"\xff", b"\xe2\x80\xae"):
        assert byte not in raw
    assert b"\\x1b[2J" in raw


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (a full disk)")
def test_ports_watch_log_on_a_full_disk_is_one_line() -> None:
    """`ports --watch --log` on a full disk ended in "Internal error: OSError" (the report-a-bug
    line); it is the same line as a log that cannot be opened."""
    with socket.socket() as listener:  # at least one socket for the first refresh to log
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        result = run_socklab(["ports", "--watch", "1", "--log", "/dev/full"], timeout_s=30)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "socklab ports: cannot write the log file /dev/full: No space left on device"
    ]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (a full disk)")
def test_trace_output_on_a_full_disk_is_one_line() -> None:
    """`trace --output` to a file that fills up ended in "Internal error: OSError ... Please
    report it" from the file's close; now the line of a file that cannot be written, and the
    program's own exit status."""
    program = "import socket, sys; socket.socket().close(); print('ran'); sys.exit(3)"
    result = run_socklab(
        ["trace", "--output", "/dev/full", "--", sys.executable, "-c", program], timeout_s=30
    )
    assert result.returncode == 3, result.stderr
    assert result.stdout == "ran\n"
    assert result.stderr.splitlines() == [
        "socklab trace: Cannot write the trace to /dev/full: No space left on device. "
        "Choose another file with --output."
    ]


@pytest.mark.parametrize("target", ["directory", "dangling-symlink"])
def test_trace_output_to_a_path_it_cannot_write(tmp_path: Path, target: str) -> None:
    """A directory or a symlink into nowhere: one line, exit 1, the program not started."""
    path = tmp_path / "out"
    if target == "directory":
        path.mkdir()
    else:
        path.symlink_to(tmp_path / "missing" / "trace.txt")
    marker = tmp_path / "started"
    program = f"open({str(marker)!r}, 'w').close()"
    result = run_socklab(["trace", "--output", str(path), "--", sys.executable, "-c", program])
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"socklab trace: Cannot write the trace to {path}: ")
    assert not marker.exists()


def _chat_check(mode: str) -> dict[str, str]:
    """`check chat-peer --json` against the hostile peer in `mode`: each check's received."""
    with running_fixture("hostile/chat_peer.py", mode) as port:
        result = run_socklab(
            ["check", "chat-peer", f"127.0.0.1:{port}", "--timeout", "3", "--json"],
            timeout_s=90,
        )
    assert result.returncode == 7, result.stderr  # not conforming
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    return {check["id"]: check["received"] for check in report["checks"]}


def test_check_chat_peer_names_a_flood_a_flood() -> None:
    """A peer that pings without end: the checker decoded everything received again at every
    recv (quadratic), spent its whole deadline on it (5 s of CPU in a 7-check run) and reported
    "then nothing more within 3 s" of a peer that never stopped sending."""
    received = _chat_check("flood")
    for check in ("introduces", "answers-ping", "acknowledges", "leaves"):
        assert received[check].endswith(", and more: over 1,048,576 bytes in all"), received
        assert "nothing more" not in received[check]


def test_check_chat_peer_stops_decoding_after_a_lost_frame_length() -> None:
    """After a length of 2 GiB nothing marks a frame boundary: the bytes after it were read as
    the length of a made-up second frame ("a frame of 1,094,795,585 bytes", that is "AAAA")."""
    received = _chat_check("huge")
    assert received["introduces"].startswith(
        'hello, a malformed frame ("a frame of 2,147,483,648 bytes"), then '
    ), received
    assert not any("1,094,795,585" in text for text in received.values()), received


def test_check_reports_of_a_hostile_client_stay_well_formed_and_bounded(tmp_path: Path) -> None:
    """What a program under test sends and prints reaches the terminal escaped, the JSON
    parseable and the JUnit XML well-formed (no XML-forbidden character, no raw `]]>` or `<`)
    and small, whatever it was and however much."""
    junit = tmp_path / "report.xml"
    command = [sys.executable, str(HOSTILE / "check_client.py"), "{host}", "{port}"]
    shown = run_socklab(["check", "hello-client", "--junit", str(junit), "--", *command])
    as_json = run_socklab(["check", "hello-client", "--json", "--", *command])
    assert shown.returncode == as_json.returncode == 7, shown.stderr
    for output in (shown.stdout, shown.stderr, as_json.stdout):
        assert not any(ord(c) < 32 and c not in "\n" for c in output), repr(output[:300])
        assert "\x9b" not in output and "\ufffe" not in output
    assert 'received: "]]><x>&amp;\\x00\\x01\\x07\\x1b[31mRED' in shown.stdout
    report = json.loads(as_json.stdout)
    verdicts = {check["id"]: check["verdict"] for check in report["checks"]}
    assert verdicts["message"] == verdicts["exits"] == "fail"
    assert len(junit.read_bytes()) < 64 * 1024
    root = ElementTree.parse(junit).getroot()  # raises on a file that is not well-formed
    failures = {case.get("name"): case.find("failure") for case in root.iter("testcase")}
    message = failures["message"]
    assert message is not None and message.text is not None
    assert "]]><x>&amp;\\x00" in message.text  # escaped by the checker, then by XML
    exits = failures["exits"]
    assert exits is not None and exits.text is not None
    assert "exited with status 3" in exits.text


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (a full disk)")
def test_chat_log_on_a_full_disk_is_one_notice() -> None:
    """The chat's own `--log`: one notice when the file cannot be written, no traceback."""
    result = run_socklab(
        ["chat", "--name", "alice", "--listen", "127.0.0.1:0", "--log", "/dev/full"],
        input_text="hello\n",
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "Logging error" not in result.stderr
    notices = [line for line in result.stderr.splitlines() if "log file" in line]
    assert notices == [
        "cannot write to the log file /dev/full any more: No space left on device. Lines go "
        "on to the terminal only; free space and start again with --log"
    ]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds the pipe through /proc")
def test_trace_never_writes_into_a_file_that_took_its_pipes_number(tmp_path: Path) -> None:
    """The hook wrote every event to the descriptor number it was given: once the program had
    closed the pipe and opened a file under that number, the trace's JSON lines went into the
    program's own file."""
    own = tmp_path / "own.txt"
    result = run_socklab(
        ["trace", "--", sys.executable, str(HOSTILE / "trace_fd_reused.py"), str(own)]
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"
    assert own.read_text(encoding="utf-8") == "the program's own line\n"
    assert "Traceback" not in result.stderr


def test_check_lines_are_lines_as_a_terminal_shows_them() -> None:
    """The sheet's lines joined by U+2028 are one line on a terminal, but str.splitlines() cut
    them apart and `lines` passed; now only a newline ends a line."""
    command = [sys.executable, str(HOSTILE / "check_joined_lines.py"), "{host}", "{port}"]
    result = run_socklab(["check", "hello-client", "--json", "--", *command])
    assert result.returncode == 7, result.stderr
    verdicts = {check["id"]: check["verdict"] for check in json.loads(result.stdout)["checks"]}
    assert verdicts == {
        "connects": "pass",
        "message": "pass",
        "closes-cleanly": "pass",
        "lines": "fail",
        "exits": "pass",
    }
