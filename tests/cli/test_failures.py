"""Each network failure a beginner meets: one line with a next step, in both languages, end to end."""

from __future__ import annotations

import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.socklab_process import child_environment, free_port, run_socklab, socklab_command

NETWORK, PERMISSION, ADDRESS_IN_USE = 3, 5, 6
# Every error line starts with the command that failed (docs/TEACHING.md, "One error style").
CLIENT, SERVER = "socklab converter client: ", "socklab converter server: "


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        (
            "en",
            r"Connection to 127\.0\.0\.1:{port} refused: nothing is listening there\. Is the server running, and on this port\?",
        ),
        ("de", r"Verbindung zu 127\.0\.0\.1:{port} abgelehnt: Dort lauscht nichts\. .+"),
    ],
)
def test_refused(lang: str, expected: str) -> None:
    port = free_port()
    result = run_socklab(["--lang", lang, "converter", "client", "--port", str(port), "U:x"])
    assert result.returncode == NETWORK
    assert re.fullmatch(CLIENT + expected.format(port=port), one_line(result.stderr))


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        (
            "en",
            "Port {port} is already in use by PID {pid} ({name}). Stop that program or choose another port with --port.",
        ),
        (
            "de",
            "Port {port} wird schon von PID {pid} ({name}) benutzt. Beende dieses Programm oder wähle mit --port einen anderen Port.",
        ),
    ],
)
def test_address_in_use_names_the_holder(start_socklab, lang: str, expected: str) -> None:  # type: ignore[no-untyped-def]
    import psutil

    holder = start_socklab(["converter", "server", "--port", "0"])
    _host, port = holder.wait_listening()
    result = run_socklab(["--lang", lang, "converter", "server", "--port", str(port)])
    assert result.returncode == ADDRESS_IN_USE
    name = psutil.Process(holder.pid).name()
    assert one_line(result.stderr) == SERVER + expected.format(port=port, pid=holder.pid, name=name)


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port where the OS completes the handshake but no program ever answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        yield listener.getsockname()[1]


@pytest.mark.parametrize(
    ("lang", "start"),
    [
        # Connected, but not a byte: what a busy iterative server looks like (issue 16).
        ("en", "No answer from 127.0.0.1:{port} within 0.3 s: connected, but no greeting yet:"),
        (
            "de",
            "Keine Antwort von 127.0.0.1:{port} innerhalb von 0,3 s: verbunden, aber noch keine Begrüßung:",
        ),
    ],
)
def test_timeout(silent_listener: int, lang: str, start: str) -> None:
    port = silent_listener
    result = run_socklab(
        ["--lang", lang, "converter", "client", "--port", str(port), "--timeout", "0.3", "U:x"]
    )
    assert result.returncode == NETWORK
    line = one_line(result.stderr)
    assert line.startswith(CLIENT + start.format(port=port))
    assert "--timeout" in line


@pytest.fixture
def resetting_listener() -> Iterator[int]:
    """A port whose server accepts and aborts at once (SO_LINGER 0: RST instead of FIN)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(10)

    def abort_one() -> None:
        connection, _ = listener.accept()
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()

    thread = threading.Thread(target=abort_one, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    thread.join(10)
    listener.close()


@pytest.mark.parametrize(
    ("lang", "start"),
    [
        ("en", "The connection to 127.0.0.1:{port} was reset"),
        ("de", "Die Verbindung zu 127.0.0.1:{port} wurde zurückgesetzt"),
    ],
)
def test_reset_by_peer(resetting_listener: int, lang: str, start: str) -> None:
    port = resetting_listener
    result = run_socklab(["--lang", lang, "converter", "client", "--port", str(port), "U:x"])
    assert result.returncode == NETWORK
    assert one_line(result.stderr).startswith(CLIENT + start.format(port=port))


@pytest.fixture
def empty_namespace() -> Iterator[str]:
    """A network namespace of our own with no route anywhere: every address is unreachable."""
    name = f"socklab-unreach-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=10)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False, timeout=10)


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        (
            "en",
            "10.255.255.1:50000 is unreachable: no route to it. Check the address and your network connection.",
        ),
        (
            "de",
            "10.255.255.1:50000 ist nicht erreichbar: keine Route dorthin. Prüfe die Adresse und deine Netzwerkverbindung.",
        ),
    ],
)
def test_unreachable(empty_namespace: str, lang: str, expected: str) -> None:
    # Inside a namespace with only loopback, nothing leaves the namespace: connect() fails at once.
    result = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            empty_namespace,
            *socklab_command(),
            "--lang",
            lang,
            "converter",
            "client",
            "--host",
            "10.255.255.1",
            "U:x",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env=child_environment(),
        check=False,
    )
    assert result.returncode == NETWORK
    assert one_line(result.stderr) == CLIENT + expected


def unprivileged_prefix() -> list[str]:
    """Without the right to bind ports below 1024 when we are root (CI), as ourselves otherwise.

    Root keeps its uid and drops only CAP_NET_BIND_SERVICE (from the bounding set, so exec cannot
    regain it): becoming nobody instead failed where the clone lies in a private folder
    (`mktemp -d` is mode 0700), which nobody cannot enter to run the venv's socklab.
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to drop the capability for this test"
    return [setpriv, "--bounding-set=-net_bind_service", "--inh-caps=-net_bind_service"]


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        (
            "en",
            "Permission denied for port {port}: ports below 1024 need administrator rights. Use a port from 1024 up.",
        ),
        (
            "de",
            "Zugriff verweigert für Port {port}: Ports unter 1024 brauchen Administratorrechte. Verwende einen Port ab 1024.",
        ),
    ],
)
def test_privileged_port_as_unprivileged_user(lang: str, expected: str) -> None:
    first_free = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    assert first_free > 1, "this system lets every user bind every port"
    port = min(80, first_free - 1)
    result = subprocess.run(
        [
            *unprivileged_prefix(),
            *socklab_command(),
            "--lang",
            lang,
            "converter",
            "server",
            "--port",
            str(port),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env=child_environment(),
        check=False,
    )
    assert result.returncode == PERMISSION, result.stderr
    assert one_line(result.stderr) == SERVER + expected.format(port=port)


def test_the_cli_asks_the_socket_table_for_the_holder(monkeypatch: pytest.MonkeyPatch) -> None:
    """The error carries port and transport; the CLI, not the runtime, looks up the holder."""
    from socklab.cli import failures
    from socklab.errors import AddressInUseError
    from socklab.i18n import set_language
    from socklab.tools.ports import PortBlockers

    set_language("en")  # an in-process test before this one may have left German behind

    asked: list[tuple[int, str]] = []

    def blockers_of(port: int, transport: str) -> PortBlockers:
        asked.append((port, transport))
        return PortBlockers(holder="PID 7 (nc)", held=True, time_wait=0)

    monkeypatch.setattr("socklab.tools.ports.find_port_blockers", blockers_of)
    line, status = failures.describe_error(AddressInUseError("in use", port=9, transport="udp"))
    assert (line, status) == (
        "Port 9 is already in use by PID 7 (nc). Stop that program or choose another port with --port.",
        ADDRESS_IN_USE,
    )
    assert asked == [(9, "udp")]
    line, _status = failures.describe_error(AddressInUseError("in use", port=9))
    assert line.startswith("Port 9 is already in use by another program.")
    assert asked == [(9, "udp")]  # no transport, no look-up
    # A command whose own port is chosen by another flag names that flag (impair: --listen).
    line, _status = failures.describe_error(
        AddressInUseError("in use", port=9, transport="tcp"), port_option="--listen"
    )
    assert line.endswith("choose another port with --listen.")


@pytest.mark.parametrize(
    ("blockers", "expected"),
    [
        # A listener whose owner is hidden (another user's process) is not TIME_WAIT's fault.
        ((None, True, 3), r"Port 9 is already in use by another program\. .*"),
        ((None, False, 0), r"Port 9 is already in use by another program\. .*"),
        (
            (None, False, 1),
            r"Port 9 is held by no program, only by 1 closed connection in TIME_WAIT: .*",
        ),
        (
            (None, False, 2),
            r"Port 9 is held by no program, only by 2 closed connections in TIME_WAIT: .*",
        ),
    ],
)
def test_time_wait_is_named_only_when_nothing_else_holds_the_port(
    monkeypatch: pytest.MonkeyPatch, blockers: tuple[str | None, bool, int], expected: str
) -> None:
    from socklab.cli import failures
    from socklab.errors import AddressInUseError
    from socklab.i18n import set_language
    from socklab.tools.ports import PortBlockers

    set_language("en")
    holder, held, time_wait = blockers
    monkeypatch.setattr(
        "socklab.tools.ports.find_port_blockers",
        lambda _port, _transport: PortBlockers(holder=holder, held=held, time_wait=time_wait),
    )
    line, status = failures.describe_error(AddressInUseError("in use", port=9, transport="tcp"))
    assert status == ADDRESS_IN_USE
    assert re.fullmatch(expected, line)
