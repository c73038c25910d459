"""`socklab trace -- COMMAND`: students' programs, unchanged, traced as subprocesses on loopback.

The programs are in tests/fixtures/trace_programs, written as a student writes them. Each test
runs the real `socklab trace`, waits for the program's own output lines (never a fixed sleep),
and checks what the trace shows and that the program's stdin, stdout and exit status are its own.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.socklab_process import SocklabProcess, free_port, run_socklab
from tests.tracing.test_trace import calls

PROGRAMS = Path(__file__).resolve().parents[1] / "fixtures" / "trace_programs"
WAIT_S = 15.0


def trace_lines(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("[trace] ")]


def test_two_sends_arrive_in_one_recv_of_a_students_server(start_socklab) -> None:  # type: ignore[no-untyped-def]
    """The lecture's byte-stream lesson, on purpose: the server reads only after both sends."""
    port = free_port()
    server = start_socklab(
        ["trace", "--", sys.executable, str(PROGRAMS / "waiting_server.py"), str(port)]
    )
    server.wait_for_line(r"^ready$", WAIT_S)
    client = start_socklab(
        ["trace", "--", sys.executable, str(PROGRAMS / "two_sends_client.py"), str(port)]
    )
    client.wait_for_line(r"^sent both$", WAIT_S)
    server.wait_for_line(r"^waiting for stdin$", WAIT_S)
    assert server.proc.stdin is not None
    server.proc.stdin.write(b"go\n")  # through the program's own stdin
    server.proc.stdin.close()
    server.wait_for_line(r"^go: received b'Hello, server!\\n'$", WAIT_S)
    client.wait_for_line(r"^reply: HELLO, SERVER!$", WAIT_S)
    assert server.wait(WAIT_S) == 3  # the program's exit status is trace's
    assert client.wait(WAIT_S) == 0

    server_trace = "\n".join(server.stderr_lines)
    assert calls(server.stderr_lines) == [
        "socket",
        "bind",
        "listen",
        "accept",
        "recv",
        "sendall",
        "close",
        "close",
    ]
    assert re.search(
        r"recv\(1024\) -> 15 bytes\n\s+┌── start of recv #1\n\s+│ \"Hello, server!\\n\"\n"
        r"\s+│ 0000  48 65 6c 6c 6f 2c 20 73 65 72 76 65 72 21 0a\s+\|Hello, server!\.\|\n"
        r"\s+└── end of recv #1: 15 bytes in this one call",
        server_trace,
    ), server_trace
    assert calls(client.stderr_lines) == ["socket", "connect", "send", "send", "recv", "close"]
    client_trace = "\n".join(client.stderr_lines)
    assert re.search(rf"connect\(127\.0\.0\.1:{port}\)", client_trace)
    assert "send() 7 bytes" in client_trace and "send() 8 bytes" in client_trace
    # stdout is the program's alone: no trace line mixed in
    assert not trace_lines(server.stdout_lines) and not trace_lines(client.stdout_lines)
    assert server.stdout_lines == [
        "ready",
        "waiting for stdin",
        "go: received b'Hello, server!\\n'",
    ]


def test_explain_in_german_and_output_file(tmp_path: Path) -> None:
    output = tmp_path / "trace.txt"
    result = run_socklab(
        [
            "--lang",
            "de",
            "trace",
            "--explain",
            "--output",
            str(output),
            "--",
            sys.executable,
            str(PROGRAMS / "asyncio_echo.py"),
        ],
        timeout_s=WAIT_S,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "reply: HI ASYNC\n"
    assert "[trace]" not in result.stderr
    text = output.read_text(encoding="utf-8")
    lines = text.splitlines()
    # asyncio: its connections, reads and writes (the loop's own wake-up sockets are not shown)
    names = calls(lines)
    assert names.count("connect") == 1 and names.count("accept") == 1
    assert names.count("send") == 2 and names.count("recv") >= 2
    assert re.search(r"connect\(127\.0\.0\.1:\d+\)", text)
    assert '"hi async\\n"' in text and '"HI ASYNC\\n"' in text
    assert "accept() holt die nächste Verbindung" in text  # --explain, in the chosen language


def test_python_on_path_and_users_sitecustomize_still_loads(tmp_path: Path) -> None:
    python3 = shutil.which("python3")
    if python3 is None:
        pytest.skip("no python3 on PATH")
    own = tmp_path / "site"
    own.mkdir()
    (own / "sitecustomize.py").write_text(
        "import sys\nsys.stderr.write('user sitecustomize ran\\n')\n", encoding="utf-8"
    )
    port = free_port()
    with subprocess.Popen(
        [sys.executable, "-c", _ONE_REPLY_SERVER, str(port)], stdout=subprocess.PIPE, text=True
    ) as server:
        assert server.stdout is not None
        assert server.stdout.readline() == "ready\n"
        result = run_socklab(
            ["trace", "--", "python3", str(PROGRAMS / "two_sends_client.py"), str(port)],
            env={"PYTHONPATH": str(own)},
            timeout_s=WAIT_S,
        )
        server.wait(WAIT_S)
    assert result.returncode == 0, result.stderr
    assert "user sitecustomize ran" in result.stderr
    assert calls(result.stderr.splitlines())[:4] == ["socket", "connect", "send", "send"]
    assert result.stdout.splitlines()[0] == "sent both"


_ONE_REPLY_SERVER = """
import socket, sys
server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
print("ready", flush=True)
connection, _ = server.accept()
data = b""
while not data.endswith(b"\\n"):
    data += connection.recv(1024)
connection.sendall(data.upper())
connection.close()
"""


def test_ctrl_c_reaches_the_program_and_its_status_is_returned(start_socklab) -> None:  # type: ignore[no-untyped-def]
    # setsid: no controlling terminal, so socklab itself passes the signal on (on a terminal,
    # Ctrl+C reaches both at once)
    if shutil.which("setsid") is None:
        pytest.skip("setsid (util-linux) is missing")
    traced = start_socklab(
        ["trace", "--", sys.executable, str(PROGRAMS / "interrupted_server.py")], prefix=["setsid"]
    )
    traced.wait_for_line(r"^ready$", WAIT_S)
    traced.send_signal(signal.SIGINT)
    traced.wait_for_line(r"^stopped by Ctrl\+C$", WAIT_S)
    assert traced.wait(WAIT_S) == 0
    assert calls(traced.stderr_lines)[-1] == "close"


def test_missing_program_is_one_line_with_the_shells_status() -> None:
    result = run_socklab(["trace", "--", "no-such-program-socklab"], timeout_s=WAIT_S)
    assert result.returncode == 127
    assert result.stderr.splitlines() == [
        "socklab trace: No program named no-such-program-socklab was found: check its name, or give its path."
    ]


def test_no_command_is_a_usage_error() -> None:
    result = run_socklab(["trace"], timeout_s=WAIT_S)
    assert result.returncode == 2
    assert "socklab trace -- python3 client.py" in result.stderr


@pytest.fixture(scope="module")
def c_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is missing (CI installs it)")
    binary = tmp_path_factory.mktemp("c") / "two_writes_client"
    subprocess.run(
        ["gcc", "-O0", "-o", str(binary), str(PROGRAMS / "two_writes_client.c")],
        check=True,
        timeout=60,
    )
    return binary


def test_c_program_through_strace(c_client: Path) -> None:
    if shutil.which("strace") is None:
        pytest.skip("strace is missing (CI installs it)")
    port = free_port()
    with subprocess.Popen(
        [sys.executable, "-c", _ONE_REPLY_SERVER, str(port)], stdout=subprocess.PIPE, text=True
    ) as server:
        assert server.stdout is not None
        assert server.stdout.readline() == "ready\n"
        result = run_socklab(
            ["trace", "--explain", "--", str(c_client), str(port)], timeout_s=WAIT_S
        )
        server.wait(WAIT_S)
    if "Operation not permitted" in result.stderr:  # a container without ptrace
        pytest.skip(result.stderr.strip())
    assert result.returncode == 0, result.stderr
    assert result.stdout == "reply: HELLO, SERVER!\n"
    lines = result.stderr.splitlines()
    assert calls(lines) == ["socket", "connect", "write", "send", "read", "close"], result.stderr
    text = result.stderr
    assert re.search(rf"connect\(127\.0\.0\.1:{port}\)", text)
    assert 'write() 7 bytes\n          "Hello, "' in text
    assert re.search(
        r"read\(1024\) -> 15 bytes\n\s+┌── start of read #1\n\s+│ \"HELLO, SERVER!\\n\"", text
    )
    assert "read() on a socket is recv() without flags" in text
    assert "close() releases the socket; TCP sends FIN" in text


def test_c_program_without_strace_says_how_to_install_it(c_client: Path, tmp_path: Path) -> None:
    # PATH without strace (socklab and the program are named by their paths)
    result = run_socklab(
        ["trace", "--", str(c_client), "1"], env={"PATH": str(tmp_path)}, timeout_s=WAIT_S
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "socklab trace: strace is needed to trace programs not written in Python: sudo apt install strace"
    ]


def test_c_program_connection_refused_is_traced_with_its_status(c_client: Path) -> None:
    if shutil.which("strace") is None:
        pytest.skip("strace is missing (CI installs it)")
    port = free_port()  # nobody listens there
    process = SocklabProcess(["trace", "--", str(c_client), str(port)])
    status = process.wait(WAIT_S)
    if any("Operation not permitted" in line for line in process.stderr_lines):
        pytest.skip("no ptrace here")
    assert status == 2  # the program's own
    assert any(
        re.search(
            rf"connect\(127\.0\.0\.1:{port}\) failed: ECONNREFUSED \(Connection refused\)", line
        )
        for line in process.stderr_lines
    ), process.stderr_lines


def test_java_program_through_strace(tmp_path: Path) -> None:
    """Optional (no JDK in CI): the lecture's Java client, whose writeBytes() writes byte by byte."""
    if shutil.which("javac") is None or shutil.which("strace") is None:
        pytest.skip("javac or strace is missing")
    subprocess.run(
        ["javac", "-d", str(tmp_path), str(PROGRAMS / "TCPClient.java")], check=True, timeout=120
    )
    port = free_port()
    with subprocess.Popen(
        [sys.executable, "-c", _ONE_REPLY_SERVER, str(port)], stdout=subprocess.PIPE, text=True
    ) as server:
        assert server.stdout is not None
        assert server.stdout.readline() == "ready\n"
        result = run_socklab(
            ["trace", "--", "java", "-cp", str(tmp_path), "TCPClient", str(port)], timeout_s=60
        )
        server.wait(WAIT_S)
    if "Operation not permitted" in result.stderr:
        pytest.skip("no ptrace here")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "FROM SERVER: HELLO, SERVER!\n"
    lines = result.stderr.splitlines()
    assert re.search(rf"connect\((?:\[::ffff:)?127\.0\.0\.1\]?:{port}\)", result.stderr)
    assert sum(1 for line in lines if re.search(r"  write\(\) 1 byte$", line)) == 15
    assert re.search(r"read\(\d+\) -> 15 bytes", result.stderr)


def test_selectors_program_with_non_blocking_connect() -> None:
    result = run_socklab(
        ["trace", "--", sys.executable, str(PROGRAMS / "selector_echo.py")], timeout_s=WAIT_S
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "reply: echo me\n"
    names = calls(result.stderr.splitlines())
    # connect_ex() returned EINPROGRESS; the first send() on the socket shows it completed
    assert names == ["socket", "bind", "listen", "socket", "accept", "connect", "send", "recv",
                     "send", "recv"]  # fmt: skip
    assert result.stderr.count('"echo me\\n"') == 4


def test_accept_timing_out_is_shown() -> None:
    result = run_socklab(
        ["trace", "--explain", "--", sys.executable, str(PROGRAMS / "waiting_for_nobody.py")],
        timeout_s=WAIT_S,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "nobody came\n"
    assert re.search(r"^\[trace\] fd \d+  settimeout\(0\.2\)$", result.stderr, re.M)
    assert re.search(
        r"^\[trace\] fd \d+  accept\(\) timed out: socket\.timeout raised\n\s+= The call waited",
        result.stderr,
        re.M,
    )
    # the kernel's facts about the socket cross the pipe: a listening socket's close sends no FIN
    assert "close() on a listening socket stops accepting" in result.stderr


def test_unwritable_output_file_is_one_line() -> None:
    result = run_socklab(
        ["trace", "--output", "/nonexistent-dir/trace.txt", "--", sys.executable, "-c", "pass"],
        timeout_s=WAIT_S,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "socklab trace: Cannot write the trace to /nonexistent-dir/trace.txt: No such file or directory. "
        "Choose another file with --output."
    ]


_SHOW_ENVIRONMENT = """
import os, sys
print(repr(os.environ.get("PYTHONPATH")))
print([name for name in os.environ if name.startswith("SOCKLAB_TRACE")])
print([entry for entry in sys.path if "socklab-trace-" in entry])
"""


def test_program_sees_its_own_environment_and_path() -> None:
    """Programs it starts are not traced by accident, and sys.path is the program's own."""
    result = run_socklab(
        ["trace", "--", sys.executable, "-c", _SHOW_ENVIRONMENT],
        env={"PYTHONPATH": "/somewhere/else"},
        timeout_s=WAIT_S,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["'/somewhere/else'", "[]", "[]"]


def test_a_file_that_is_not_executable_is_one_line(tmp_path: Path) -> None:
    program = tmp_path / "client"
    program.write_text("not a program\n", encoding="utf-8")
    result = run_socklab(["trace", "--", str(program)], timeout_s=WAIT_S)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"socklab trace: Cannot run {program}: Permission denied. "
        "Check that it is a program you may run (chmod +x for your own)."
    ]


def test_a_python_script_run_by_its_shebang_is_traced_from_inside(tmp_path: Path) -> None:
    script = tmp_path / "client"
    script.write_text(
        f"#!{sys.executable}\nimport socket\nsocket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    # a PATH without strace: were the script not seen as Python, trace would ask for strace
    result = run_socklab(
        ["trace", "--", str(script)], env={"PATH": str(tmp_path)}, timeout_s=WAIT_S
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"socket\(AF_INET6, SOCK_DGRAM\) -> new socket fd (\d+)", result.stderr)
    assert calls(result.stderr.splitlines()) == ["socket", "close"]
