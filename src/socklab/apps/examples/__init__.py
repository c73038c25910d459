"""The course texts' programs as clean Python 3 files (`socklab examples`).

The files are package data under `programs/<language>/`: the same code in every language, the
comments in English or German (du). Each is listed here with the file name it is written as and
the `socklab` commands that run its counterpart and grade it, so the docs and the tests take
them from one place. Every program takes the sheet's port by default and HOST/PORT from its
arguments, so a checker can run it on a free port.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from socklab.errors import UsageError
from socklab.i18n import _, current_language


@dataclass(frozen=True, slots=True)
class Example:
    """One program: `name` on the command line, `file` written, `role` server or client.

    `check` is the `socklab check` command that grades it; for a server it follows
    HOST:PORT, for a client it comes before `-- python3 FILE {host} {port}`.
    `counterpart` is the socklab command it talks to.
    """

    name: str
    file: str
    role: str
    check: tuple[str, ...]
    counterpart: tuple[str, ...]

    def text(self, language: str | None = None) -> str:
        """The program's source, with its comments in `language` (default: the chosen one)."""
        chosen = language or current_language()
        folder = resources.files(__package__).joinpath("programs")
        source = folder.joinpath(chosen, self.file)
        if not source.is_file():
            source = folder.joinpath("en", self.file)
        return source.read_text(encoding="utf-8")


EXAMPLES: tuple[Example, ...] = (
    Example(
        "hello-server",
        "server.py",
        "server",
        ("hello-server",),
        ("hello", "client"),
    ),
    Example(
        "hello-client",
        "client.py",
        "client",
        ("hello-client",),
        ("hello", "server"),
    ),
    Example(
        "upper-udp-server",
        "udp_server.py",
        "server",
        ("upper-server", "--udp"),
        ("upper", "client", "--udp"),
    ),
    Example(
        "upper-udp-client",
        "udp_client.py",
        "client",
        ("upper-client", "--udp"),
        ("upper", "server", "--udp"),
    ),
    Example(
        "upper-tcp-server",
        "tcp_server.py",
        "server",
        ("upper-server",),
        ("upper", "client", "--tcp"),
    ),
    Example(
        "upper-tcp-client",
        "tcp_client.py",
        "client",
        ("upper-client",),
        ("upper", "server", "--tcp"),
    ),
    Example(
        "converter-server",
        "converter_server.py",
        "server",
        ("converter-server", "--framing", "raw"),
        ("converter", "client", "--framing", "raw"),
    ),
    Example(
        "converter-client",
        "converter_client.py",
        "client",
        ("converter-client", "--framing", "raw"),
        ("converter", "server", "--framing", "raw"),
    ),
    Example(
        "converter-udp-server",
        "converter_udp_server.py",
        "server",
        ("converter-server", "--udp"),
        ("converter", "client", "--udp"),
    ),
    Example(
        "converter-udp-client",
        "converter_udp_client.py",
        "client",
        ("converter-client", "--udp"),
        ("converter", "server", "--udp"),
    ),
)

EXAMPLE_NAMES: tuple[str, ...] = tuple(example.name for example in EXAMPLES)


def find_examples(names: list[str]) -> list[Example]:
    """The examples named (all when none is), in the order of EXAMPLES; UsageError for an
    unknown name."""
    unknown = [name for name in names if name not in EXAMPLE_NAMES]
    if unknown:
        raise UsageError(
            _("unknown example {names}; choose from {choices}").format(
                names=", ".join(unknown), choices=", ".join(EXAMPLE_NAMES)
            )
        )
    return [example for example in EXAMPLES if not names or example.name in names]


def write_examples(examples: list[Example], directory: Path) -> list[Path]:
    """Write each example into `directory` (created if missing); the paths written.

    An existing file is left alone (a student's edited copy is never overwritten): UsageError
    names it before anything is written.
    """
    targets = [directory / example.file for example in examples]
    existing = [path for path in targets if path.exists()]
    if existing:
        raise UsageError(
            _("{path} already exists; move it away or choose another --dir").format(
                path=existing[0]
            )
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for example, path in zip(examples, targets, strict=True):
            path.write_text(example.text(), encoding="utf-8", newline="\n")
    except OSError as exc:
        raise UsageError(
            _("cannot write the examples to {path}: {reason}").format(
                path=directory, reason=exc.strerror or exc
            )
        ) from exc
    return targets
