"""`socklab live` in a real browser: Debian's chromium driven by Selenium, headless.

One live server (English) and one browser session for the module, so the page costs a start-up,
not one per test; the German test opens a second, small live server in the same browser. The
converter server and its clients are real `socklab` subprocesses on free loopback ports. Every
wait is a bounded WebDriverWait on a condition of the page, never a sleep.

Packets need root or CAP_NET_RAW (CI runs as root): without, the packet tests are skipped and
the page's one line saying how to get packets is checked instead.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.socklab_process import SocklabProcess, free_port, run_socklab

webdriver = pytest.importorskip("selenium.webdriver")
pytest.importorskip("aiohttp")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from tests.live.chromium import headless_chromium  # noqa: E402  (needs selenium)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)
CAN_CAPTURE = os.name == "posix" and os.geteuid() == 0
needs_capture = pytest.mark.skipif(not CAN_CAPTURE, reason="capturing packets needs root")
APPEAR_S = 2.0  # the bound: a conversation shows within 2 s
WAIT_S = 15.0  # start-up of the page and the servers on a loaded CI machine
SCREENSHOTS = os.environ.get("SOCKLAB_SCREENSHOTS")  # a directory: `make screenshots` sets it
URL_LINE = re.compile(r"^socklab live: (http://127\.0\.0\.1:\d+/)$")


def start_live(args: list[str]) -> tuple[SocklabProcess, str]:
    live = SocklabProcess(["live", "--http", "127.0.0.1:0", *args])
    url = live.wait_for_line(URL_LINE.pattern, WAIT_S).group(1)
    return live, url


@pytest.fixture(scope="module")
def converter_port() -> Iterator[int]:
    port = free_port()
    server = SocklabProcess(["converter", "server", "--port", str(port)])
    server.wait_listening()
    yield port
    server.stop()


@pytest.fixture(scope="module")
def relay_port() -> int:
    """Where `socklab impair` relays UDP to the converter: selected from the start."""
    return free_port(socket.SOCK_DGRAM)


@pytest.fixture(scope="module")
def reorder_port() -> int:
    """Where a second `socklab impair` reorders UDP to the converter: selected from the start."""
    return free_port(socket.SOCK_DGRAM)


@pytest.fixture(scope="module")
def traced_port() -> int:
    """Where a converter server runs with --trace, sending its recv() calls to the page."""
    return free_port()


@pytest.fixture(scope="module")
def live_server(
    converter_port: int, relay_port: int, reorder_port: int, traced_port: int
) -> Iterator[tuple[str, str]]:
    """The page's URL and the address traced programs send their recv() calls to."""
    ports = [converter_port, relay_port, reorder_port, traced_port]
    live, url = start_live([word for port in ports for word in ("--port", str(port))])
    trace_line = r"^recv\(\) calls of traced programs: SOCKLAB_LIVE=(127\.0\.0\.1:\d+) socklab"
    trace_address = live.wait_for_line(trace_line, WAIT_S).group(1)
    yield url, trace_address
    assert live.stop() == 0, live.stderr_lines


@pytest.fixture(scope="module")
def live_url(live_server: tuple[str, str]) -> str:
    return live_server[0]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with headless_chromium(str(CHROMIUM), str(CHROMEDRIVER), WAIT_S) as driver:
        yield driver


def wait_for(driver: Any, condition: Callable[[Any], Any], timeout_s: float = WAIT_S) -> Any:
    return WebDriverWait(driver, timeout_s, poll_frequency=0.05).until(condition)


def open_page(driver: Any, url: str) -> None:
    driver.get(url)
    wait_for(driver, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
    wait_for(driver, lambda d: d.execute_script("return window.socklabLive.state.connected"))


def capture_running(driver: Any) -> bool:
    return bool(
        driver.execute_script(
            "return document.getElementById('capture-note').dataset.state === 'running'"
        )
    )


def arrows(driver: Any) -> list[Any]:
    return list(driver.find_elements(By.CSS_SELECTOR, "#ladder svg g.arrow"))


def ladder_text(driver: Any) -> str:
    return str(driver.execute_script("return window.socklabLive.ladderSvgText()"))


def converse(port: int, *requests: str) -> list[str]:
    result = run_socklab(["converter", "client", "--port", str(port), *requests])
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def screenshot(driver: Any, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SCREENSHOTS) / name))


@pytest.fixture(scope="module")
def page(browser: Any, live_url: str) -> Any:
    open_page(browser, live_url)
    return browser


def test_page_loads_with_the_listening_socket(page: Any, converter_port: int) -> None:
    assert page.title == "socklab live"
    row = wait_for(
        page,
        lambda d: next(
            (
                r
                for r in d.find_elements(By.CSS_SELECTOR, "#sockets tbody tr.listening")
                if f":{converter_port}" in r.text
            ),
            None,
        ),
    )
    assert "LISTEN" in row.text


@needs_capture
def test_a_converter_conversation_appears_as_a_ladder(page: Any, converter_port: int) -> None:
    wait_for(page, capture_running)
    replies = converse(converter_port, "U:hello", "L:WORLD")
    assert replies[-2:] == ["HELLO", "world"]

    def complete(driver: Any) -> bool:
        flags = [arrow.get_attribute("data-flags") for arrow in arrows(driver)]
        text = ladder_text(driver)
        return (
            flags[:3] == ["SYN", "SYN+ACK", "ACK"]
            and "U:hello" in text
            and "HELLO" in text
            and "world" in text
            and any("FIN" in flag for flag in flags)
        )

    wait_for(page, complete, APPEAR_S)
    # The per-client socket of the conversation showed up next to the listening one (or is
    # already closed: TIME_WAIT on the client's side), and the byte stream names the messages.
    stream = page.find_element(By.ID, "stream").text
    assert "U:hello" in stream and "HELLO" in stream
    screenshot(page, "live-ladder.png")


@needs_capture
def test_markup_in_a_request_shows_as_text(page: Any, converter_port: int) -> None:
    wait_for(page, capture_running)
    markup = "U:<b>x</b><script>window.pwned=1</script>"
    converse(converter_port, markup)
    wait_for(
        page,
        lambda d: "<script>window.pwned=1</script>" in d.find_element(By.ID, "stream").text,
        APPEAR_S,
    )
    assert page.find_elements(By.CSS_SELECTOR, "#stream b, #ladder b, #stream script") == []
    assert page.execute_script("return window.pwned === undefined")
    assert "<SCRIPT>WINDOW.PWNED=1</SCRIPT>" in page.find_element(By.ID, "stream").text


@needs_capture
def test_pause_stops_updates_and_step_applies_one(page: Any, converter_port: int) -> None:
    wait_for(page, capture_running)
    converse(converter_port, "U:before")
    wait_for(page, lambda d: "U:before" in ladder_text(d), APPEAR_S)
    page.find_element(By.ID, "pause").click()
    shown = ladder_text(page)
    converse(converter_port, "U:while-paused")
    wait_for(
        page, lambda d: d.execute_script("return window.socklabLive.state.pending.length") >= 7
    )
    assert ladder_text(page) == shown  # nothing drawn while paused
    assert page.find_element(By.ID, "pause").get_attribute("aria-pressed") == "true"
    page.find_element(By.ID, "step").click()
    stepped = ladder_text(page)
    assert stepped != shown and "U:while-paused" not in stepped  # one arrow: the SYN
    assert [a.get_attribute("data-flags") for a in arrows(page)] == ["SYN"]
    page.find_element(By.ID, "pause").click()
    wait_for(page, lambda d: "U:while-paused" in ladder_text(d), APPEAR_S)


@needs_capture
def test_the_svg_export_parses_as_svg(page: Any, converter_port: int) -> None:
    wait_for(page, capture_running)
    converse(converter_port, "U:export")
    wait_for(page, lambda d: "U:export" in ladder_text(d), APPEAR_S)
    root = ElementTree.fromstring(ladder_text(page))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = [node.text or "" for node in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "SYN" in texts and any("U:export" in text for text in texts)


@needs_capture
def test_the_pcapng_export_holds_the_packets(page: Any, converter_port: int) -> None:
    from socklab.tools.capture.savefile import read_capture

    wait_for(page, capture_running)
    converse(converter_port, "U:saved")
    wait_for(page, lambda d: "U:saved" in ladder_text(d), APPEAR_S)
    body = page.execute_script(
        "return fetch('/export.pcapng').then(r => r.arrayBuffer())"
        ".then(b => Array.from(new Uint8Array(b)))"
    )
    kind, frames = read_capture(io.BytesIO(bytes(body)))
    assert kind == "pcapng"
    assert any(b"U:saved" in frame.data for frame in frames)


# Found and clicked in one script: the buttons are redrawn with every update.
SELECT_CONNECTION = (
    "const b = [...document.querySelectorAll('#connections button')].find("
    "  (b) => b.textContent.startsWith(arguments[0]) && b.textContent.endsWith(':' + arguments[1]));"
    "if (b) b.click(); return Boolean(b);"
)


def arrows_with_fate(driver: Any, relay_port: int, fate: str) -> list[Any]:
    """Select the client <-> relay flow and wait for arrows marked with `fate` (within the
    relay's forwarding window of 1 s plus the page's 2 s)."""
    wait_for(
        driver, lambda d: d.execute_script(SELECT_CONNECTION, "UDP", str(relay_port)), APPEAR_S
    )
    selector = f"#ladder svg g.arrow[data-fate~='{fate}']"
    return list(
        wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, selector), 1.0 + APPEAR_S)
    )


def start_udp_relay(
    page: Any,
    start_socklab: Callable[..., SocklabProcess],
    server_port: int,
    port: int,
    *faults: str,
) -> SocklabProcess:
    """A UDP converter server on `server_port` and `socklab impair` relaying `port` to it, its
    `faults` on the way up (requests only, so a reply's fate never muddles the request's)."""
    wait_for(page, capture_running)
    server = start_socklab(["converter", "server", "--udp", "--port", str(server_port)])
    server.wait_listening()
    relay = start_socklab(
        ["impair", "--udp", "--listen", str(port), "--target", f"127.0.0.1:{server_port}",
         "--direction", "up", *faults]
    )  # fmt: skip
    relay.wait_for_line(r"^impair listening on ")
    return relay


@needs_capture
def test_a_datagram_lost_in_impair_is_shown_as_lost(
    page: Any, start_socklab: Callable[..., SocklabProcess], converter_port: int, relay_port: int
) -> None:
    relay = start_udp_relay(
        page, start_socklab, converter_port, relay_port, "--loss", "0.5", "--seed", "4"
    )
    requests = [f"U:datagram{number}" for number in range(8)]
    result = run_socklab(
        ["converter", "client", "--udp", "--port", str(relay_port), "--retries", "10",
         "--timeout", "0.3", *requests]
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # The client <-> relay ladder: the lost datagram's arrow says so. The relay runs on
    # meanwhile: the live view tells a relay by its two sockets in the socket table.
    lost = arrows_with_fate(page, relay_port, "lost")
    assert "lost in the relay" in lost[0].text
    assert relay.stop() == 0
    # impair's own count agrees: it did lose some on the way up
    summary = relay.stdout_lines[-1]
    assert re.search(r"up: \d+ datagrams in, \d+ out \([1-9]\d* lost", summary), summary
    screenshot(page, "live-udp-lost.png")


@needs_capture
def test_a_datagram_reordered_in_impair_is_shown_as_reordered(
    page: Any, start_socklab: Callable[..., SocklabProcess], converter_port: int, reorder_port: int
) -> None:
    relay = start_udp_relay(
        page, start_socklab, converter_port, reorder_port, "--reorder", "0.5", "--seed", "7"
    )
    # Back to back, so a held-back datagram has a successor to overtake it (the converter
    # client waits for each reply: nothing would overtake). Replies are read, then ignored.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(WAIT_S)
        for number in range(12):
            client.sendto(f"U:burst{number}".encode(), ("127.0.0.1", reorder_port))
        client.recv(2048)
    reordered = arrows_with_fate(page, reorder_port, "reordered")
    assert "reordered by the relay" in reordered[0].text
    assert relay.stop() == 0
    # impair's own count agrees, and the page marks no more than impair reordered
    summary = relay.stdout_lines[-1]
    counted = re.search(r"up: \d+ datagrams in, \d+ out \(.*?(\d+) reordered", summary)
    assert counted and 1 <= len(reordered) <= int(counted.group(1)), summary


@needs_capture
def test_traced_recv_calls_show_beside_the_segments(
    page: Any,
    start_socklab: Callable[..., SocklabProcess],
    traced_port: int,
    live_server: tuple[str, str],
) -> None:
    wait_for(page, capture_running)
    server = start_socklab(
        ["converter", "server", "--port", str(traced_port), "--trace"],
        env={"SOCKLAB_LIVE": live_server[1]},
    )
    server.wait_listening()
    two_messages = b"U:one\nU:two\n"  # one send, one segment: TCP keeps no message boundaries
    with socket.create_connection(("127.0.0.1", traced_port), timeout=WAIT_S) as client:
        client.sendall(two_messages)
        replies = b""
        while replies.count(b"\n") < 2:
            chunk = client.recv(4096)
            assert chunk, replies
            replies += chunk
    assert replies.endswith(b"ONE\nTWO\n")
    wait_for(page, lambda d: d.execute_script(SELECT_CONNECTION, "TCP", str(traced_port)), APPEAR_S)
    # Read in one script: the stream is redrawn with every update.
    first_recv = (
        "const line = document.querySelector('#stream .line.recv');"
        "return line && [line.dataset.first, line.dataset.last, line.textContent];"
    )
    first, last, text = wait_for(page, lambda d: d.execute_script(first_recv), 1.0 + APPEAR_S)
    # The server's first recv() returned both messages at once: one call, the whole segment.
    assert (first, last) == ("1", "12")
    assert "recv() #1 returned 12 bytes: 1–12" in text
    stream = page.execute_script("return document.getElementById('stream').innerText")
    assert "segment bytes 1–12" in stream and "U:one" in stream and "U:two" in stream
    assert "SOCKLAB_LIVE=" + live_server[1] in page.find_element(By.ID, "trace-hint").text
    page.execute_script("document.getElementById('stream').scrollIntoView({block: 'center'})")
    screenshot(page, "live-recv.png")
    page.execute_script("window.scrollTo(0, 0)")


def test_the_theme_toggle_switches_light_and_dark(page: Any) -> None:
    def background() -> str:
        return str(page.execute_script("return getComputedStyle(document.body).backgroundColor"))

    before = background()
    page.find_element(By.ID, "theme").click()
    after = background()
    assert {before, after} == {"rgb(255, 255, 255)", "rgb(0, 0, 0)"}
    screenshot(page, "live-dark.png")
    page.find_element(By.ID, "theme").click()
    assert background() == before


def test_without_capture_rights_the_page_says_how(page: Any) -> None:
    note = wait_for(
        page,
        lambda d: d.execute_script("return document.getElementById('capture-note').dataset.state"),
    )
    if CAN_CAPTURE:
        assert note == "running"
        assert not page.find_element(By.ID, "capture-note").is_displayed()
    else:
        assert note == "no-permission"
        assert "sudo .venv/bin/socklab live" in page.find_element(By.ID, "capture-note").text


def test_german_mode_shows_german_labels(browser: Any, converter_port: int) -> None:
    live, url = start_live(["--port", str(converter_port), "--lang", "de"])
    try:
        open_page(browser, url)
        headings = [h.text for h in browser.find_elements(By.TAG_NAME, "h2")]
        assert "Verbindungen" in headings and "Bytestrom" in headings
        assert browser.find_element(By.ID, "clear").text == "Leeren"
        assert browser.execute_script("return document.documentElement.lang") == "de"
        screenshot(browser, "live-de.png")
    finally:
        assert live.stop() == 0
