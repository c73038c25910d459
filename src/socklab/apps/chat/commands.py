"""What a typed line means: a message, or one of the slash commands (IRC's conventions).

`/nick NAME`, `/who`, `/msg NAME text`, `/quit`, `/help`; `//text` sends `/text` as it is.
Parsing is pure and separate from doing, so the terminal and the scriptable mode agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from socklab.protocol.chat import is_valid_name


@dataclass(frozen=True, slots=True)
class SayText:
    text: str


@dataclass(frozen=True, slots=True)
class SayPrivately:
    to: str
    text: str


@dataclass(frozen=True, slots=True)
class Rename:
    name: str


@dataclass(frozen=True, slots=True)
class ListBuddies:
    pass


@dataclass(frozen=True, slots=True)
class Quit:
    pass


@dataclass(frozen=True, slots=True)
class ShowHelp:
    pass


@dataclass(frozen=True, slots=True)
class BadCommand:
    """`usage` is the command's usage line, or "" for an unknown command."""

    command: str
    usage: str


ChatCommand = SayText | SayPrivately | Rename | ListBuddies | Quit | ShowHelp | BadCommand

USAGES = {
    "/nick": "/nick NAME",
    "/who": "/who",
    "/msg": "/msg NAME text",
    "/quit": "/quit",
    "/help": "/help",
}


def parse_input(line: str) -> ChatCommand | None:
    """One typed line -> a command; None for a blank line (nothing to do)."""
    line = line.rstrip("\r\n")
    if not line.strip():
        return None
    if not line.startswith("/"):
        return SayText(line)
    if line.startswith("//"):
        return SayText(line[1:])
    command, _, rest = line.partition(" ")
    command = command.lower()
    rest = rest.strip()
    match command:
        case "/nick":
            if is_valid_name(rest):
                return Rename(rest)
        case "/who" | "/names":
            return ListBuddies()
        case "/msg":
            name, _, text = rest.partition(" ")
            if is_valid_name(name) and text.strip():
                return SayPrivately(name, text.strip())
        case "/quit" | "/exit":
            return Quit()
        case "/help":
            return ShowHelp()
        case _:
            return BadCommand(command, "")
    return BadCommand(command, USAGES[command])
