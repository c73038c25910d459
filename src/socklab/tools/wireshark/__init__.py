"""The Wireshark dissector socklab ships (`socklab.lua`, next to this module) and its installation.

`socklab.lua` teaches Wireshark and tshark the converter (`socklab_converter`) and the chat
(`socklab_chat`); docs/WIRESHARK.md describes its fields. Wireshark loads every `.lua` file of
its personal plugins folder at start-up (Wireshark User's Guide, "Plugin folders"): on Windows
`%APPDATA%\\Wireshark\\plugins`, on Linux, macOS and other Unix-like systems
`~/.local/lib/wireshark/plugins`. Lua plugins sit in that folder itself, not in the versioned
subfolders that compiled plugins use, so one copy serves every Wireshark version.

Installing never destroys a file silently: a `socklab.lua` already there with other content
(edited by hand, or from another socklab version) is kept as `socklab.lua.bak`, and the result
says so. The copy is written next to its destination and renamed over it, so Wireshark never
reads half a file.
"""

from __future__ import annotations

import enum
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DISSECTOR_NAME = "socklab.lua"
BACKUP_SUFFIX = ".bak"


def dissector_path() -> Path:
    """The dissector file inside the installed package."""
    return Path(__file__).with_name(DISSECTOR_NAME)


class PluginsFolderUnknown(Exception):
    """Windows without %APPDATA%: there is no personal plugins folder to name."""


def personal_plugins_folder(
    platform: str = sys.platform,
    environ: Mapping[str, str] = os.environ,
    home: Path | None = None,
) -> Path:
    """Wireshark's personal plugins folder on `platform` (a `sys.platform` value)."""
    if platform == "win32":
        appdata = environ.get("APPDATA")
        if not appdata:
            raise PluginsFolderUnknown
        return Path(appdata) / "Wireshark" / "plugins"
    return (home if home is not None else Path.home()) / ".local" / "lib" / "wireshark" / "plugins"


class InstallOutcome(enum.Enum):
    INSTALLED = "installed"  # the folder had no socklab.lua
    UNCHANGED = "unchanged"  # the same file was there already
    REPLACED = "replaced"  # a different socklab.lua was there: kept as the backup


@dataclass(frozen=True, slots=True)
class Installation:
    path: Path
    outcome: InstallOutcome
    backup: Path | None = None


def install_dissector(folder: Path, source: Path | None = None) -> Installation:
    """Copy the dissector into `folder` (created if needed); OSError when the system refuses."""
    content = (source or dissector_path()).read_bytes()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / DISSECTOR_NAME
    backup: Path | None = None
    try:
        existing: bytes | None = target.read_bytes()
    except FileNotFoundError:
        existing = None
    if existing == content:
        return Installation(target, InstallOutcome.UNCHANGED)
    if existing is not None:
        backup = target.with_name(DISSECTOR_NAME + BACKUP_SUFFIX)
        os.replace(target, backup)
    descriptor, temporary = tempfile.mkstemp(prefix=".socklab-", suffix=".lua", dir=folder)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(content)
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide it from another user's Wireshark
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    outcome = InstallOutcome.INSTALLED if backup is None else InstallOutcome.REPLACED
    return Installation(target, outcome, backup)
