"""`socklab chat`: the lecture's P2P chat, in a terminal or driven by a script.

With a terminal on stdin: a prompt_toolkit prompt whose input line stays intact while messages
arrive (they are printed above it), and a bottom bar listing buddies with their presence.
Without one (a pipe, a file, a test): one message per line from stdin; every received message is
one line `[name] text` on stdout, everything else a notice on stderr; at the end of stdin the
chat delivers what is pending and leaves, unless `--stay`. The first notice is
"... listening on HOST:PORT", which scripts and tests wait for.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from socklab.apps.chat import DEFAULT_MODEL, MODELS, ChatConfig, ChatPeer, start_chat_peer
from socklab.apps.chat.commands import (
    BadCommand,
    ChatCommand,
    ListBuddies,
    Quit,
    Rename,
    SayPrivately,
    SayText,
    ShowHelp,
    parse_input,
)
from socklab.apps.chat.peer import LINGER_S
from socklab.cli.arguments import (
    add_model,
    host_port,
    positive_seconds,
)
from socklab.cli.environment import Environment
from socklab.cli.logfile import LineLog
from socklab.cli.status import ExitStatus
from socklab.i18n import _, format_count, format_number, ngettext, translate
from socklab.protocol.chat import (
    MAX_TEXT_BYTES,
    BuddyJoined,
    BuddyLeft,
    BuddyRenamed,
    ChatEvent,
    ChatSettings,
    ConnectionRejected,
    ConnectionsRefused,
    IntroductionsIgnored,
    LeaveKind,
    MessageReceived,
    MessagesDropped,
    MessageUndeliverable,
    PeerUnreachable,
    PolicyLimits,
    Presence,
    Refusal,
    SelfConnection,
    SendProblem,
    SendResult,
    SessionTimers,
    Undeliverable,
    format_address,
    is_valid_name,
)
from socklab.protocol.escaping import escape_for_terminal

# How long a leaving peer waits for acknowledgements before it says bye anyway.
LEAVE_GRACE_S = 5.0
# Scriptable mode: before the first line is sent, wait this long at most for the peers given
# with --peer to answer and introduce their buddies, so the first message reaches the group.
STARTUP_SETTLE_S = 6.0


def chat_name(text: str) -> str:
    if not is_valid_name(text):
        raise argparse.ArgumentTypeError(
            _(
                "'{name}' is not a valid chat name: use 1-32 letters, digits, '.', '_' or '-'"
            ).format(name=text)
        )
    return text


def peer_address(text: str) -> tuple[str, int]:
    host, port = host_port(text)
    if port == 0:
        raise argparse.ArgumentTypeError(_("a peer's port cannot be 0"))
    return host, port


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", type=chat_name, required=True, help=_("your name in the chat"))
    parser.add_argument(
        "--listen",
        type=host_port,
        default=("127.0.0.1", 0),
        metavar="[HOST:]PORT",
        help=_("where buddies reach you (default: 127.0.0.1 and a port the OS picks)"),
    )
    parser.add_argument(
        "--peer",
        type=peer_address,
        action="append",
        default=[],
        metavar="HOST:PORT",
        help=_("a buddy to connect to (repeatable); its buddies are introduced"),
    )
    add_model(
        parser,
        choices=MODELS,
        default=DEFAULT_MODEL,
        help=_(
            "the runtime serving the sockets: threads, one thread per socket and direction; "
            "selectors or asyncio, one loop (default: %(default)s)"
        ),
    )
    parser.add_argument(
        "--stay",
        action="store_true",
        help=_("scriptable mode: stay in the chat after the end of input, until stopped"),
    )
    parser.add_argument("--log", metavar="FILE", help=_("append the conversation to FILE"))
    # Hidden: tests and demos shorten the keepalive (interval; dead after three intervals).
    parser.add_argument("--keepalive", type=positive_seconds, default=5.0, help=argparse.SUPPRESS)
    # Its own port is chosen with --listen: error lines name that flag, not --port.
    parser.set_defaults(handler=run, port_option="--listen")


class ChatScreen:
    """Turns events and results into lines: messages to one stream, notices to another."""

    def __init__(
        self,
        write_message: Callable[[str], None],
        write_notice: Callable[[str], None],
        log: LineLog | None,
        private_marker: bool,
    ) -> None:
        self._write_message = write_message
        self._write_notice = write_notice
        self._log = log
        self._private_marker = private_marker

    def message(self, line: str) -> None:
        self._write_message(line)
        self._append_log(line)

    def notice(self, line: str) -> None:
        self._write_notice(line)
        self._append_log("* " + line)

    def _append_log(self, line: str) -> None:
        if self._log is not None and (problem := self._log.write(line)) is not None:
            self._write_notice(problem)  # once: the log is closed to further lines

    def show_event(self, event: ChatEvent) -> None:
        match event:
            case MessageReceived(sender=sender, text=text, private=private):
                marker = _(" (privately)") if private and self._private_marker else ""
                self.message(f"[{sender}]{marker} {text}")
            case BuddyJoined(name=name, address=address, returned=returned):
                line = (
                    _("{name} is back ({address})")
                    if returned
                    else _("{name} joined the chat ({address})")
                )
                self.notice(line.format(name=name, address=format_address(address)))
            case BuddyLeft(name=name, kind=kind, detail=detail):
                self.notice(self._describe_leave(name, kind, translate(detail)))
            case BuddyRenamed(old=old, new=new):
                self.notice(_("{old} is now known as {new}").format(old=old, new=new))
            case MessageUndeliverable(recipient=name, message_id=number, text=text, reason=reason):
                self.notice(
                    _("Message #{number} was not delivered to {name} ({reason}): {text}").format(
                        number=number, name=name, reason=_describe_undeliverable(reason), text=text
                    )
                )
            case ConnectionRejected(address=address, detail=detail):
                self.notice(
                    _("Disconnected {address}: {detail}").format(
                        address=format_address(address), detail=translate(detail)
                    )
                )
            case PeerUnreachable(address=address, detail=detail, retry_in_s=retry):
                if retry is None:
                    line = _("Cannot reach {address}: {detail}. Giving up.")
                else:
                    line = _(
                        "Cannot reach {address}: {detail}. Still trying (first retry in {seconds} s)."
                    )
                seconds = "" if retry is None else format_number(retry, decimals=None)
                self.notice(
                    line.format(
                        address=format_address(address), detail=translate(detail), seconds=seconds
                    )
                )
            case SelfConnection(address=address):
                self.notice(
                    _("{address} is this chat itself; ignored.").format(
                        address=format_address(address)
                    )
                )
            case IntroductionsIgnored(sender=sender, counts=counts):
                self.notice(
                    ngettext(
                        "Not dialling {count} address introduced by {name}: {reasons}",
                        "Not dialling {count} addresses introduced by {name}: {reasons}",
                        sum(n for _reason, n in counts),
                    ).format(
                        count=format_number(sum(n for _reason, n in counts)),
                        name=sender,
                        reasons=", ".join(_describe_refusal(r, n) for r, n in counts),
                    )
                )
            case MessagesDropped(sender=sender, messages=count, size_bytes=size):
                limits = PolicyLimits()
                self.notice(
                    ngettext(
                        "Dropped {count} message ({size}) from {name}: more than "
                        "{messages} messages or {kib} KiB a second",
                        "Dropped {count} messages ({size}) from {name}: more than "
                        "{messages} messages or {kib} KiB a second",
                        count,
                    ).format(
                        count=format_number(count),
                        size=format_count("{count} byte", "{count} bytes", size),
                        name=sender,
                        messages=format_number(limits.messages_per_s, decimals=None),
                        kib=format_number(limits.bytes_per_s / 1024, decimals=None),
                    )
                )
            case ConnectionsRefused(host=host, count=count, slots=slots):
                self.notice(
                    ngettext(
                        "Refused {count} connection from {host}: {waiting}",
                        "Refused {count} connections from {host}: {waiting}",
                        count,
                    ).format(
                        count=format_number(count),
                        host=host,
                        waiting=ngettext(
                            "{slots} of its connections has not said hello yet",
                            "{slots} of its connections have not said hello yet",
                            slots,
                        ).format(slots=format_number(slots)),
                    )
                )

    @staticmethod
    def _describe_leave(name: str, kind: LeaveKind, detail: str) -> str:
        match kind:
            case LeaveKind.LEFT:
                return _("{name} left the chat").format(name=name)
            case LeaveKind.LOST:
                return _(
                    "{name} left the chat (connection lost: {detail}); reconnecting when it returns"
                ).format(name=name, detail=detail)
            case LeaveKind.TIMEOUT:
                return _(
                    "{name} left the chat (vanished: {detail}); reconnecting when it returns"
                ).format(name=name, detail=detail)
            case LeaveKind.VIOLATION:
                return _("{name} was disconnected: it broke the chat protocol ({detail})").format(
                    name=name, detail=detail
                )
            case LeaveKind.RESTARTED:
                return _("{name} restarted").format(name=name)
            case LeaveKind.GONE:
                return _("{name} did not come back ({detail}); no longer reconnecting").format(
                    name=name, detail=detail
                )

    def show_send_result(
        self, result: SendResult, *, to: str | None = None, text: str = ""
    ) -> None:
        """What became of a typed message; `to` and `text` are those of a /msg."""
        if result.problem is not None:
            self.notice(
                _("Not sent: {reason}").format(reason=_describe_problem(result.problem, to))
            )
            return
        if to is not None:
            # The sender's copy of a private message: the typed "/msg bob ..." line reads as a
            # command, this line as what was said and to whom (IRC clients echo "-> bob: ...").
            self.message(
                _("→ {name}: {text}").format(
                    name=escape_for_terminal(to), text=escape_for_terminal(text)
                )
            )
        if result.queued_for:
            self.notice(
                _("{names}: away; message #{number} will be delivered when they return").format(
                    names=", ".join(result.queued_for), number=result.message_id
                )
            )

    def show_buddies(self, peer: ChatPeer) -> None:
        buddies = peer.buddies()
        if not buddies:
            self.notice(
                _("Nobody else is here. You are reachable at {address}.").format(
                    address=format_address(peer.address)
                )
            )
            return
        for buddy in buddies:
            presence = _("online") if buddy.presence is Presence.ONLINE else _("away")
            self.notice(
                _("{name}: {presence}, {address}").format(
                    name=buddy.name, presence=presence, address=format_address(buddy.address)
                )
            )


def _describe_undeliverable(reason: Undeliverable) -> str:
    return {
        Undeliverable.AWAY: _("the buddy is away"),
        Undeliverable.LEFT: _("the buddy left"),
        Undeliverable.NO_ACK: _("no acknowledgement in time"),
        Undeliverable.QUEUE_FULL: _("too many messages waiting"),
        Undeliverable.EXPIRED: _("waited too long"),
    }[reason]


def _describe_refusal(refusal: Refusal, count: int) -> str:
    limits = PolicyLimits()
    text = {
        Refusal.HOST_NAME: ngettext(
            "{count} host name (never looked up)", "{count} host names (never looked up)", count
        ),
        Refusal.OTHER_SCOPE: _("{count} outside its network scope"),
        Refusal.LOW_PORT: _("{count} on ports below 1024"),
        Refusal.BUDGET: _("{count} over its budget of {budget} a minute"),
        Refusal.FAILED: ngettext(
            "{count} that failed {failures} time (paused for {minutes} min)",
            "{count} that failed {failures} times (paused for {minutes} min)",
            limits.failures_before_cooldown,
        ),
        Refusal.LIFETIME: ngettext(
            "{count} over the lifetime limit of {lifetime} address",
            "{count} over the lifetime limit of {lifetime} addresses",
            limits.max_learned_targets,
        ),
    }[refusal]
    return text.format(
        count=format_number(count),
        budget=format_number(limits.introductions_per_window),
        failures=format_number(limits.failures_before_cooldown),
        minutes=format_number(limits.cooldown_s / 60, decimals=None),
        lifetime=format_number(limits.max_learned_targets),
    )


def _describe_problem(problem: SendProblem, to: str | None = None) -> str:
    if problem is SendProblem.NO_SUCH_NAME:
        return _("nobody named {name} is here; /who lists who is").format(
            name=escape_for_terminal(to or "", quoted=True)
        )
    return {
        SendProblem.LEAVING: _("leaving the chat"),
        SendProblem.EMPTY: _("empty message"),
        SendProblem.TOO_LONG: _("the message is longer than {limit} bytes").format(
            limit=format_number(MAX_TEXT_BYTES)
        ),
        SendProblem.ALONE: _("nobody else is in the chat yet"),
    }[problem]


def execute(command: ChatCommand, peer: ChatPeer, screen: ChatScreen) -> bool:
    """Carry out one typed command; False when the user wants to leave."""
    match command:
        case SayText(text=text):
            screen.show_send_result(peer.send_text(text))
        case SayPrivately(to=to, text=text):
            screen.show_send_result(peer.send_text(text, to=to), to=to, text=text)
        case Rename(name=name):
            old = peer.name
            peer.rename(name)
            screen.notice(_("You are now known as {new} (was {old})").format(new=name, old=old))
        case ListBuddies():
            screen.show_buddies(peer)
        case Quit():
            return False
        case ShowHelp():
            screen.notice(_("Commands:"))
            for usage, meaning in (
                ("/msg NAME text", _("send to one buddy only")),
                ("/nick NAME", _("change your name")),
                ("/who", _("list buddies and their presence")),
                ("/quit", _("leave the chat (Ctrl+D too)")),
                ("//text", _("send a line that starts with /")),
            ):
                screen.notice(f"  {usage:<16} {meaning}")
        case BadCommand(command=name, usage=usage):
            if usage:
                screen.notice(_("Usage: {usage}").format(usage=usage))
            else:
                screen.notice(_("Unknown command {command}; try /help").format(command=name))
    return True


def run(args: argparse.Namespace, env: Environment) -> ExitStatus:
    log = None if args.log is None else LineLog(args.log)
    interactive = env.stdin_isatty
    try:
        if interactive:
            return _run_terminal(args, env, log)
        return _run_script(args, env, log)
    finally:
        if log is not None:
            log.close()


def _config(args: argparse.Namespace) -> ChatConfig:
    interval = args.keepalive
    timers = SessionTimers(
        keepalive_interval_s=interval,
        keepalive_timeout_s=3 * interval,
        handshake_timeout_s=max(2 * interval, 2.0),
    )
    host, port = args.listen
    return ChatConfig(
        name=args.name,
        listen_host=host,
        listen_port=port,
        peers=tuple(args.peer),
        settings=ChatSettings(timers=timers, backoff_max_s=min(10.0, 2 * interval)),
    )


def _announce(peer: ChatPeer, screen: ChatScreen) -> None:
    screen.notice(
        _("{name}: chat listening on {address} (model {model})").format(
            name=peer.name, address=format_address(peer.address), model=peer.model
        )
    )


def _leave(peer: ChatPeer, screen: ChatScreen) -> None:
    peer.leave(LEAVE_GRACE_S)
    if not peer.wait(LEAVE_GRACE_S + LINGER_S + 1.0):
        screen.notice(_("Some buddies did not answer in time; closing anyway."))
    peer.stop()
    screen.notice(_("You left the chat."))


def _run_script(args: argparse.Namespace, env: Environment, log: LineLog | None) -> ExitStatus:
    screen = ChatScreen(env.say, env.warn, log, private_marker=False)
    peer = start_chat_peer(args.model, _config(args), screen.show_event)
    try:
        _announce(peer, screen)
        deadline = time.monotonic() + STARTUP_SETTLE_S
        while args.peer and not peer.is_settled and time.monotonic() < deadline:
            time.sleep(0.05)
        for line in env.stdin:
            command = parse_input(line)
            if command is not None and not execute(command, peer, screen):
                break
        else:
            if args.stay:
                while True:  # until SIGTERM or Ctrl+C
                    time.sleep(0.5)
    except KeyboardInterrupt:
        pass  # stopped: leave as politely as after the end of input
    finally:
        _leave(peer, screen)
    return ExitStatus.OK


def _run_terminal(args: argparse.Namespace, env: Environment, log: LineLog | None) -> ExitStatus:
    try:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.formatted_text import FormattedText
        from prompt_toolkit.patch_stdout import patch_stdout
    except ImportError:
        env.fail(
            _(
                "The chat's terminal view needs prompt_toolkit: pip install 'prompt_toolkit>=3.0'. Or pipe input to it for the scriptable mode."
            )
        )
        return ExitStatus.ERROR

    def write_line(line: str) -> None:
        # The patched sys.stdout prints above the prompt and redraws the input line after it.
        print(line, file=sys.stdout, flush=True)

    screen = ChatScreen(write_line, lambda line: write_line("* " + line), log, private_marker=True)
    with patch_stdout():
        peer = start_chat_peer(args.model, _config(args), screen.show_event)
        try:
            _announce(peer, screen)
            screen.notice(_("Type a message and press Enter; /help lists the commands."))

            def toolbar() -> FormattedText:
                parts: list[tuple[str, str]] = [("", " " + _("Buddies:") + " ")]
                buddies = peer.buddies()
                if not buddies:
                    parts.append(("italic", _("nobody yet")))
                for buddy in buddies:
                    online = buddy.presence is Presence.ONLINE
                    parts.append(
                        ("fg:ansigreen" if online else "fg:ansiyellow", "● " if online else "○ ")
                    )
                    label = buddy.name if online else _("{name} (away)").format(name=buddy.name)
                    parts.append(("", label + "  "))
                return FormattedText(parts)

            session: PromptSession[str] = PromptSession()
            while True:
                try:
                    line = session.prompt(
                        lambda: f"{peer.name}> ", bottom_toolbar=toolbar, refresh_interval=0.5
                    )
                except EOFError:
                    break
                command = parse_input(line)
                if command is not None and not execute(command, peer, screen):
                    break
        except KeyboardInterrupt:
            pass
        finally:
            _leave(peer, screen)
    return ExitStatus.OK
