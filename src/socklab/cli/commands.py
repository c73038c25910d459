"""The registry of subcommands: one module of `socklab.cli` each, in the order `--help` lists them.

Each module defines `register(subparsers)`, which adds its parser and sets `handler` to a
function `run(args, env) -> ExitStatus`. Adding a command is one line here.
"""

COMMAND_MODULES: tuple[str, ...] = (
    "hello",
    "upper",
    "converter",
    "demo",
    "impair",
    "chat",
    "check",
    "ports",
    "capture",
    "bench",
)
