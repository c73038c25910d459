"""`socklab examples` and the checks of every course program (issue 18).

Each example program is written by `socklab examples`, then run for real on a free loopback
port: a server against socklab's own client and then graded by its `socklab check`; a client
against socklab's own server and then graded by its `socklab check` (which runs it against the
checker's peer). Every report must be all PASS (exit 0): the examples are the course's
reference programs. Broken programs must fail the right check with the root cause once, and
`--junit` must write JUnit XML that parses with the schema's elements.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from socklab.apps.examples import EXAMPLES, Example
from tests.apps.test_chat import ChatProcess
from tests.socklab_process import SocklabProcess, child_environment, free_port, run_socklab

READY = re.compile(r"(?i)listening on port|ready to receive")
READY_TIMEOUT_S = 15.0
NOT_CONFORMING = 7

# What socklab's own counterpart is given and what must come back (server examples), or what
# the example client is given on stdin and must print against socklab's server (client examples).
SENTENCE = "hello world"
CONVERTER_INPUT = "U:hello\nL:WORLD\n"


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("examples")
    result = run_socklab(["examples", "--dir", str(directory)])
    assert result.returncode == 0, result.stderr
    for example in EXAMPLES:
        assert f"wrote {directory / example.file}" in result.stdout
    return directory


@contextmanager
def running_example(path: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """The example server on `port`, once it said it is ready; stopped by its PID."""
    process = subprocess.Popen(
        [sys.executable, str(path), str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_environment(),
    )
    lines: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for raw in iter(process.stdout.readline, b""):
            lines.append(raw.decode("utf-8", "replace"))
            if READY.search(lines[-1]):
                ready.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        if not ready.wait(READY_TIMEOUT_S):
            process.kill()
            _out, err = process.communicate(timeout=10)
            raise AssertionError(f"{path.name} never said it was ready: {lines} {err!r}")
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)
        reader.join(10)


def check(*args: str) -> tuple[int, dict[str, Any]]:
    result = run_socklab(["check", *args], timeout_s=60)
    assert "Traceback" not in result.stderr, result.stderr
    start = args.index("--") if "--" in args else len(args)
    assert "--json" in args[:start]
    return result.returncode, json.loads(result.stdout)


def assert_all_pass(status: int, report: dict[str, Any]) -> None:
    failing = [c for c in report["checks"] if c["verdict"] != "pass"]
    assert failing == [], json.dumps(failing, indent=2)
    assert status == 0
    assert report["conforming"] is True
    assert len(report["checks"]) >= 3


SERVERS = [example for example in EXAMPLES if example.role == "server"]
CLIENTS = [example for example in EXAMPLES if example.role == "client"]


def counterpart_client(example: Example, port: int) -> subprocess.CompletedProcess[str]:
    """socklab's own client against the example server."""
    command = [*example.counterpart, "--port", str(port)]
    if example.counterpart[0] == "converter":
        return run_socklab([*command, "U:hello", "L:WORLD"])
    if example.counterpart[0] == "upper":
        return run_socklab(command, input_text=SENTENCE + "\n")
    return run_socklab(command)


@pytest.mark.parametrize("example", SERVERS, ids=[e.name for e in SERVERS])
def test_server_example_serves_socklab_and_passes_its_check(
    written: Path, example: Example
) -> None:
    path = written / example.file
    port = free_port()
    with running_example(path, port) as server:
        answered = counterpart_client(example, port)
        assert answered.returncode == 0, answered.stdout + answered.stderr
        if example.counterpart[0] == "hello":
            # The sheet's server serves one connection and stops.
            assert server.wait(timeout=10) == 0
            port = free_port()
        else:
            expected = "HELLO" if example.counterpart[0] == "converter" else "HELLO WORLD"
            assert expected in answered.stdout, answered.stdout
            assert_all_pass(*check(*example.check, f"127.0.0.1:{port}", "--json"))
    if example.counterpart[0] == "hello":
        # A fresh server for the check: the first one served its one connection.
        with running_example(path, port):
            assert_all_pass(*check(*example.check, f"127.0.0.1:{port}", "--json"))


def counterpart_server(example: Example, port: int) -> SocklabProcess:
    """socklab's own server for the example client, once it is ready."""
    args = [*example.counterpart, "--port", str(port)]
    if example.counterpart[0] == "hello":
        args += ["--host", "127.0.0.1"]
    server = SocklabProcess(args)
    server.wait_for_line(r"(?i)listening on|ready to receive")
    return server


def client_input(example: Example) -> str:
    return CONVERTER_INPUT if example.counterpart[0] == "converter" else SENTENCE + "\n"


EXPECTED_OUTPUT = {
    "hello": ["Client: Connected!", "Client: Sent: Hi server!"],
    "upper": ["HELLO WORLD"],
    "converter": ["HELLO", "world"],
}


@pytest.mark.parametrize("example", CLIENTS, ids=[e.name for e in CLIENTS])
def test_client_example_talks_to_socklab_and_passes_its_check(
    written: Path, example: Example
) -> None:
    path = written / example.file
    port = free_port()
    server = counterpart_server(example, port)
    try:
        ran = subprocess.run(
            [sys.executable, str(path), "127.0.0.1", str(port)],
            input=client_input(example),
            capture_output=True,
            text=True,
            timeout=30,
            env=child_environment(),
            check=False,
        )
    finally:
        server.stop()
    assert ran.returncode == 0, ran.stdout + ran.stderr
    for text in EXPECTED_OUTPUT[example.counterpart[0]]:
        assert text in ran.stdout, ran.stdout
    command = ["--", sys.executable, str(path), "{host}", "{port}"]
    assert_all_pass(*check(*example.check, "--json", *command))


def test_examples_comments_follow_the_language(tmp_path: Path) -> None:
    """--lang de writes the same code with German comments; an existing file is never
    overwritten; an unknown name is one line with the choices."""
    english = tmp_path / "en"
    german = tmp_path / "de"
    assert run_socklab(["examples", "converter-server", "--dir", str(english)]).returncode == 0
    result = run_socklab(["--lang", "de", "examples", "converter-server", "--dir", str(german)])
    assert result.returncode == 0, result.stderr
    en_text = (english / "converter_server.py").read_text(encoding="utf-8")
    de_text = (german / "converter_server.py").read_text(encoding="utf-8")

    def code(text: str) -> list[str]:
        return [line.split("#")[0].rstrip() for line in text.splitlines() if line.split("#")[0]]

    assert code(en_text) == code(de_text)
    assert "conn.recv(2)" in de_text and "conn.recv(1500)" in de_text  # the lesson kept
    assert "Starte ihn mit" in de_text and "Run it" not in de_text
    again = run_socklab(["examples", "converter-server", "--dir", str(english)])
    assert again.returncode == 2
    assert again.stderr.count("\n") == 1 and "already exists" in again.stderr
    unknown = run_socklab(["examples", "nope"])
    assert unknown.returncode == 2 and "hello-server" in unknown.stderr


def test_junit_is_valid_xml_with_failure_and_skipped(tmp_path: Path) -> None:
    """A client that sends the wrong message and prints nothing: `message` fails, `lines`
    fails, and the JUnit file holds a testcase per check with <failure>; a check that was not
    reached (nothing connects) is <skipped>."""
    junit = tmp_path / "report.xml"
    wrong = tmp_path / "wrong.py"
    wrong.write_text(
        "import socket, sys\n"
        "s = socket.create_connection((sys.argv[1], int(sys.argv[2])))\n"
        "s.sendall(b'Hi \\x1b[2J server')\n"
        "s.close()\n",
        encoding="utf-8",
    )
    status, report = check(
        "hello-client",
        "--json",
        "--junit",
        str(junit),
        "--",
        sys.executable,
        str(wrong),
        "{host}",
        "{port}",
    )
    assert status == NOT_CONFORMING
    verdicts = {c["id"]: c["verdict"] for c in report["checks"]}
    assert verdicts == {
        "connects": "pass",
        "message": "fail",
        "closes-cleanly": "pass",
        "lines": "fail",
        "exits": "pass",
    }
    message = next(c for c in report["checks"] if c["id"] == "message")
    assert message["received"] == '"Hi \\x1b[2J server"'  # escaped, never raw
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    assert suite.get("name") == "hello-client"
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("5", "2", "0")
    cases = suite.findall("testcase")
    assert [case.get("name") for case in cases] == list(verdicts)
    failed = {case.get("name"): case.find("failure") for case in cases}
    assert failed["message"] is not None and failed["lines"] is not None
    assert "expected:" in (failed["message"].get("message") or "")
    assert failed["connects"] is None

    # Nothing connects: every check that depends on `connects` is skipped in the XML.
    silent = tmp_path / "silent.py"
    silent.write_text("print('no socket here')\n", encoding="utf-8")
    status, report = check(
        "hello-client", "--json", "--junit", str(junit), "--", sys.executable, str(silent)
    )
    assert status == NOT_CONFORMING
    suite = ET.parse(junit).getroot().findall("testsuite")[0]
    skipped = [
        case.get("name") for case in suite.findall("testcase") if case.find("skipped") is not None
    ]
    assert skipped == ["message", "closes-cleanly", "lines"]
    assert suite.get("skipped") == "3" and suite.get("failures") == "1"
    blocked = suite.findall("testcase")[1].find("skipped")
    assert blocked is not None and "connects failed first" in (blocked.get("message") or "")


def test_broken_upper_server_root_cause_once(tmp_path: Path) -> None:
    """A K&R TCP server that answers unchanged: `upper` fails, its dependants are not reached."""
    echo = tmp_path / "echo.py"
    echo.write_text(
        "import socket, sys\n"
        "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(1)\n"
        "print('ready to receive', flush=True)\n"
        "while True:\n"
        "    c, a = s.accept(); c.send(c.recv(1024)); c.close()\n",
        encoding="utf-8",
    )
    port = free_port()
    with running_example(echo, port):
        status, report = check("upper-server", f"127.0.0.1:{port}", "--json", "--timeout", "1")
    assert status == NOT_CONFORMING
    assert [(c["id"], c["verdict"]) for c in report["checks"]] == [
        ("upper", "fail"),
        ("closes", "not reached"),
        ("next-client", "not reached"),
    ]
    upper = report["checks"][0]
    assert upper["expected"] == '"HELLO WORLD"' and upper["received"] == '"hello world"'


def test_chat_peer_socklab_conforms_and_a_silent_peer_is_one_root_cause(tmp_path: Path) -> None:
    """socklab's own chat peer passes every chat check; a server that accepts and says
    nothing fails `greets` once, and the checks that need a greeting are not reached."""
    peer = ChatProcess(SocklabProcess(["chat", "--name", "bob", "--stay"]))
    try:
        status, report = check("chat-peer", peer.peer_arg, "--json")
        peer.wait_notice(r"checker3 was disconnected: it broke the chat protocol")
    finally:
        peer.process.stop()
    assert_all_pass(status, report)
    assert report["framing"] == "length"
    assert [c["id"] for c in report["checks"]] == [
        "greets",
        "introduces",
        "answers-ping",
        "acknowledges",
        "relays",
        "rejects",
        "leaves",
    ]
    assert peer.received() == [("checker", "hello from socklab check")]

    silent = tmp_path / "silent_peer.py"
    silent.write_text(
        "import socket, sys\n"
        "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(8)\n"
        "print('listening on port', flush=True)\n"
        "held = []\n"
        "while True:\n"
        "    held.append(s.accept()[0])\n",
        encoding="utf-8",
    )
    port = free_port()
    with running_example(silent, port):
        status, report = check("chat-peer", f"127.0.0.1:{port}", "--json", "--timeout", "1")
    assert status == NOT_CONFORMING
    verdicts = {c["id"]: c["verdict"] for c in report["checks"]}
    assert verdicts == {
        "greets": "fail",
        "introduces": "not reached",
        "answers-ping": "not reached",
        "acknowledges": "not reached",
        "relays": "not reached",
        "rejects": "fail",
        "leaves": "not reached",
    }
    greets = report["checks"][0]
    assert greets["received"] == "no frame, then nothing more within 1 s"


def test_hello_server_that_never_stops_and_udp_server_that_answers_twice(tmp_path: Path) -> None:
    """The sheet's server serves one connection: one that loops fails `stops` (and only that);
    a UDP uppercase server that answers every datagram twice fails `udp-one-reply`."""
    looping = tmp_path / "looping_hello.py"
    looping.write_text(
        "import socket, sys\n"
        "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(8)\n"
        "print('Server: Listening on port', sys.argv[1], flush=True)\n"
        "while True:\n"
        "    c, a = s.accept(); c.recv(1024); c.close()\n",
        encoding="utf-8",
    )
    port = free_port()
    with running_example(looping, port):
        status, report = check("hello-server", f"127.0.0.1:{port}", "--json", "--timeout", "1")
    assert status == NOT_CONFORMING
    assert [(c["id"], c["verdict"]) for c in report["checks"]] == [
        ("accepts", "pass"),
        ("closes", "pass"),
        ("silent", "pass"),
        ("stops", "fail"),
    ]
    assert report["checks"][3]["received"] == "still accepting connections after 1 s"

    twice = tmp_path / "twice_udp.py"
    twice.write_text(
        "import socket, sys\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.bind(('127.0.0.1', int(sys.argv[1])))\n"
        "print('The server is ready to receive', flush=True)\n"
        "while True:\n"
        "    m, a = s.recvfrom(2048); s.sendto(m.upper(), a); s.sendto(m.upper(), a)\n",
        encoding="utf-8",
    )
    port = free_port(socket.SOCK_DGRAM)
    with running_example(twice, port):
        status, report = check(
            "upper-server", f"127.0.0.1:{port}", "--udp", "--json", "--timeout", "1"
        )
    assert status == NOT_CONFORMING
    verdicts = {c["id"]: c["verdict"] for c in report["checks"]}
    assert verdicts == {
        "udp-upper": "pass",
        "udp-one-reply": "fail",
        "udp-sender-address": "pass",
    }
    one_reply = next(c for c in report["checks"] if c["id"] == "udp-one-reply")
    assert one_reply["received"] == '"ONE DATAGRAM", "ONE DATAGRAM"'
