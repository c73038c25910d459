"""`--lang` and the locale variables choose the language of every line, argparse's included."""

from __future__ import annotations

import re

import pytest

from tests.socklab_process import free_port, run_socklab

ENGLISH_ARGPARSE = ("usage:", "show this help message and exit", "options:", "positional arguments")


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--lang", "de", "--help"], None),
        (["--help"], {"LANG": "de_DE.UTF-8", "LC_ALL": ""}),
        (["--help"], {"LC_ALL": "de_DE.UTF-8"}),
    ],
    ids=["option", "LANG", "LC_ALL"],
)
def test_german_help_has_no_english_argparse_words(
    args: list[str], env: dict[str, str] | None
) -> None:
    result = run_socklab(args, env=env)
    assert result.returncode == 0
    assert result.stdout.startswith("Aufruf: socklab")
    assert "diese Hilfe anzeigen und beenden" in result.stdout
    for words in ENGLISH_ARGPARSE:
        assert words not in result.stdout


def test_english_is_the_default_and_lang_en_wins_over_lang() -> None:
    result = run_socklab(["--lang", "en", "--help"], env={"LANG": "de_DE.UTF-8"})
    assert result.stdout.startswith("usage: socklab")
    assert "show this help message and exit" in result.stdout


def test_usage_errors_are_german_in_one_language() -> None:
    result = run_socklab(["--lang", "de", "converter", "client", "--port", "x"])
    assert result.returncode == 2
    assert re.search(
        r"^socklab converter client: Argument --port: 'x' ist keine Portnummer\. "
        r"Mehr mit 'socklab converter client --help'\.$",
        result.stderr,
        re.M,
    )
    assert "error" not in result.stderr and "usage" not in result.stderr


def test_network_error_line_in_both_languages() -> None:
    port = free_port()
    english = run_socklab(["converter", "client", "--port", str(port), "U:x"])
    german = run_socklab(["--lang", "de", "converter", "client", "--port", str(port), "U:x"])
    assert english.stderr.strip() == (
        f"socklab converter client: Connection to 127.0.0.1:{port} refused: nothing is listening there. "
        "Is the server running, and on this port?"
    )
    assert german.stderr.strip().startswith(
        f"socklab converter client: Verbindung zu 127.0.0.1:{port} abgelehnt"
    )


def test_hello_keeps_the_prep_sheet_lines_in_english(start_socklab) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    server = start_socklab(["hello", "server", "--host", "127.0.0.1", "--port", str(port)])
    server.wait_for_line(rf"^Server: Listening on port {port}$")
    client = run_socklab(["hello", "client", "--port", str(port)])
    assert client.returncode == 0
    assert client.stdout.splitlines() == [
        "Client: Starting...",
        "Client: Socket created.",
        f"Client: Connecting to 127.0.0.1:{port}",
        "Client: Connected!",
        "Client: Sent: Hi server!",
        "Client: Socket closed.",
    ]
    assert server.wait() == 0
    assert server.stdout_lines[:4] == [
        "Server: Starting...",
        "Server: Socket created.",
        f"Server: Binding to 127.0.0.1:{port}",
        f"Server: Listening on port {port}",
    ]
    assert re.fullmatch(
        r"Server: Connection accepted from 127\.0\.0\.1:\d+", server.stdout_lines[4]
    )
    assert server.stdout_lines[5:] == [
        "Server: Received: Hi server!",
        "Server: Client connection closed.",
        "Server: Server socket closed.",
    ]


def test_hello_speaks_german_with_lang_de(start_socklab) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    server = start_socklab(
        ["--lang", "de", "hello", "server", "--host", "127.0.0.1", "--port", str(port)]
    )
    server.wait_for_line(rf"^Server: Lausche auf Port {port}$")
    client = run_socklab(["--lang", "de", "hello", "client", "--port", str(port)])
    assert "Client: Verbunden!" in client.stdout.splitlines()
    assert server.wait() == 0
    assert "Server: Empfangen: Hi server!" in server.stdout_lines
