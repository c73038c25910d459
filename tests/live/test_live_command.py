"""`socklab live` as a command: its URL line, its security rules, its stop, and the missing extra.

The real command runs as a subprocess on free loopback ports and is asked over HTTP with the
standard library (no browser: tests/live/test_live_page.py drives the page itself).
"""

from __future__ import annotations

import http.client
import io
import re
import signal
import socket
import sys

import pytest

from socklab.cli.environment import Environment
from socklab.cli.main import main
from socklab.cli.status import ExitStatus
from tests.socklab_process import SocklabProcess, run_socklab

pytest.importorskip("aiohttp")

URL_LINE = r"^socklab live: http://127\.0\.0\.1:(\d+)/$"


def get(port: int, path: str, host: str = "127.0.0.1", headers: dict[str, str] | None = None):
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.fixture
def live(start_socklab) -> tuple[SocklabProcess, int]:
    process = start_socklab(["live", "--http", ":0"])
    port = int(process.wait_for_line(URL_LINE).group(1))
    return process, port


def test_prints_one_url_line_and_serves_the_page_and_its_labels(live) -> None:
    process, port = live
    status, headers, body = get(port, "/")
    assert status == 200 and b'<script type="module" src="/live.js">' in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    status, _headers, body = get(port, "/labels.json")
    assert status == 200 and b'"pause": "Pause"' in body
    assert process.stdout_lines[0] == f"socklab live: http://127.0.0.1:{port}/"


def test_a_foreign_host_header_is_refused_on_loopback(live) -> None:
    # DNS rebinding: a page of evil.example whose name points at 127.0.0.1 must not read ours.
    _process, port = live
    status, _headers, _body = get(port, "/labels.json", headers={"Host": f"evil.example:{port}"})
    assert status == 403


def test_the_page_is_read_only(live) -> None:
    _process, port = live
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", "/", body=b"x")
    assert connection.getresponse().status == 405
    connection.close()


def test_ctrl_c_stops_it_cleanly(live) -> None:
    process, _port = live
    process.send_signal(signal.SIGINT)
    assert process.wait() == 0
    assert not any("Traceback" in line for line in process.stderr_lines)


def test_a_non_loopback_address_needs_the_printed_token(start_socklab) -> None:
    # 127.0.0.2 is not "loopback by default"'s 127.0.0.1 ... but still loopback. An address that
    # is not loopback at all (the wildcard) takes the token path, reached here over 127.0.0.1.
    process = start_socklab(["live", "--http", "0.0.0.0:0"])
    match = process.wait_for_line(r"^socklab live: http://0\.0\.0\.0:(\d+)/\?token=([\w-]{20,})$")
    port, token = int(match.group(1)), match.group(2)
    assert get(port, "/")[0] == 403
    assert get(port, "/?token=" + token[:-1] + ("A" if token[-1] != "A" else "B"))[0] == 403
    status, headers, _body = get(port, f"/?token={token}")
    assert status == 200
    cookie = headers["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    assert get(port, "/labels.json", headers={"Cookie": cookie})[0] == 200


def test_without_the_extra_it_names_the_pip_command(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "aiohttp", None)  # import aiohttp -> ImportError
    monkeypatch.delitem(sys.modules, "socklab.tools.live.server", raising=False)
    out, err = io.StringIO(), io.StringIO()
    status = main(["live"], Environment(io.StringIO(), out, err, {}, False, False))
    assert status == ExitStatus.ERROR
    assert re.fullmatch(
        r"socklab live: the web server of the 'live' extra is not installed: "
        r"pip install 'socklab\[live\]'\n",
        err.getvalue(),
    )
    assert out.getvalue() == ""


def test_a_taken_port_is_one_line_naming_it() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_socklab(["live", "--http", f"127.0.0.1:{port}"])
    assert result.returncode == ExitStatus.ADDRESS_IN_USE
    assert result.stderr == (
        f"socklab live: Port {port} for the page is already in use: choose another with --http, "
        "or --http :0 for a free one.\n"
    )
