"""`socklab wireshark path|install`: where the Lua dissector is, and copying it to Wireshark.

`path` prints one line, the file's path, so it composes: `tshark -X lua_script:$(socklab
wireshark path) -r trace.pcapng`. `install` copies it into Wireshark's personal plugins folder
(or `--dir`) and says where, and what happened to a different file that was there.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from socklab.cli.environment import Environment
from socklab.cli.status import ExitStatus
from socklab.i18n import _
from socklab.tools.wireshark import (
    InstallOutcome,
    PluginsFolderUnknown,
    dissector_path,
    install_dissector,
    personal_plugins_folder,
)


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar=_("ACTION"), required=True)
    path = actions.add_parser(
        "path",
        help=_("print the path of socklab's Lua dissector (for tshark -X lua_script:PATH)"),
    )
    path.set_defaults(handler=run_path)
    install = actions.add_parser(
        "install",
        help=_("copy the dissector into Wireshark's personal Lua plugins folder"),
        description=_(
            "Copy socklab.lua into Wireshark's personal plugins folder: ~/.local/lib/wireshark/plugins on Linux and macOS, %APPDATA%\\Wireshark\\plugins on Windows. A different socklab.lua already there is kept as socklab.lua.bak."
        ),
    )
    install.add_argument(
        "--dir",
        type=Path,
        metavar=_("FOLDER"),
        help=_("install into FOLDER instead (Wireshark lists its folders under Help > About)"),
    )
    install.set_defaults(handler=run_install)


def run_path(args: argparse.Namespace, env: Environment) -> ExitStatus:
    env.say(str(dissector_path()))
    return ExitStatus.OK


def run_install(args: argparse.Namespace, env: Environment) -> ExitStatus:
    folder: Path | None = args.dir
    if folder is None:
        try:
            folder = personal_plugins_folder(environ=env.environ)
        except PluginsFolderUnknown:
            env.fail(
                _(
                    "%APPDATA% is not set, so Wireshark's personal plugins folder is unknown. Name it with --dir (Wireshark shows it under Help > About Wireshark > Folders)."
                )
            )
            return ExitStatus.USAGE
    try:
        installation = install_dissector(folder)
    except OSError as exc:
        env.fail(
            _(
                "Cannot install the dissector into {folder}: {reason}. Choose another folder with --dir, or copy {source} there yourself."
            ).format(folder=folder, reason=exc.strerror or exc, source=dissector_path())
        )
        return ExitStatus.PERMISSION if isinstance(exc, PermissionError) else ExitStatus.ERROR
    match installation.outcome:
        case InstallOutcome.UNCHANGED:
            env.say(_("{path} is already installed and up to date.").format(path=installation.path))
            return ExitStatus.OK
        case InstallOutcome.INSTALLED:
            env.say(_("Installed the dissector as {path}.").format(path=installation.path))
        case InstallOutcome.REPLACED:
            env.say(
                _("Replaced a different {path}; the old file is kept as {backup}.").format(
                    path=installation.path, backup=installation.backup
                )
            )
    env.say(
        _(
            "Restart Wireshark (or Analyze > Reload Lua Plugins) and filter with socklab_converter or socklab_chat."
        )
    )
    return ExitStatus.OK
