"""The public API: what `socklab` exports, that each name is documented, that the top level loads
lazily (no I/O module on `import socklab`), and that user code type-checks with `mypy --strict`.

After websockets' and trio's `test_exports.py`: the top level re-exports exactly the union of the
public modules' exports, and nothing is exported twice.
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import socklab
import socklab.clients.message_client
import socklab.errors
import socklab.protocol
import socklab.protocol.framing
import socklab.runtimes.library
from socklab.errors import SocklabError

# The error tree has no __all__ of its own: every class of it is public.
ERROR_NAMES = sorted(
    name
    for name, value in vars(socklab.errors).items()
    if isinstance(value, type) and issubclass(value, SocklabError)
)

PUBLIC_MODULES = {
    "socklab.protocol": socklab.protocol.__all__,
    "socklab.runtimes.library": socklab.runtimes.library.__all__,
    "socklab.clients.message_client": socklab.clients.message_client.__all__,
    "socklab.errors": ERROR_NAMES,
}
COMBINED_EXPORTS = [name for names in PUBLIC_MODULES.values() for name in names]
API_NAMES = sorted(set(socklab.__all__) - {"__version__"})

# Modules that do I/O (or exist only to wait for it): none may be loaded by `import socklab`.
IO_MODULES = ("socket", "selectors", "select", "asyncio", "ssl", "threading", "uvloop")

PROJECT = Path(__file__).resolve().parents[1]


def test_top_level_reexports_all_public_module_exports() -> None:
    assert set(socklab.__all__) == {"__version__", *COMBINED_EXPORTS}


def test_public_module_exports_are_globally_unique() -> None:
    assert len(set(COMBINED_EXPORTS)) == len(COMBINED_EXPORTS)
    assert len(set(socklab.__all__)) == len(socklab.__all__)


@pytest.mark.parametrize("name", API_NAMES)
def test_every_export_is_the_defining_modules_object(name: str) -> None:
    (module,) = (module for module, names in PUBLIC_MODULES.items() if name in names)
    assert getattr(socklab, name) is getattr(sys.modules[module], name)
    namespace: dict[str, object] = {}
    exec(f"from socklab import {name}", namespace)
    assert namespace[name] is getattr(socklab, name)


def test_framers_are_reexported_by_their_package() -> None:
    for name in ("LineFramer", "LengthPrefixFramer", "RawFramer", "FrameTooLong", "Framer"):
        assert name in socklab.protocol.framing.__all__
        assert getattr(socklab.protocol.framing, name) is getattr(socklab, name)


def own_docstring(value: object) -> str | None:
    """The docstring written for `value` itself (a class's, not its base's)."""
    if isinstance(value, type):
        doc = value.__dict__.get("__doc__")
        return doc if isinstance(doc, str) else None
    return inspect.getdoc(value)


def public_members(cls: type) -> list[str]:
    """The public methods and properties a class defines itself (inherited ones are checked
    where they are defined)."""
    return [
        name
        for name, member in vars(cls).items()
        if not name.startswith("_")
        and (inspect.isfunction(member) or isinstance(member, property | classmethod))
    ]


@pytest.mark.parametrize("name", API_NAMES)
def test_every_export_and_its_public_methods_are_documented(name: str) -> None:
    value = getattr(socklab, name)
    assert (own_docstring(value) or "").strip(), f"{name} has no docstring"
    if isinstance(value, type):
        undocumented = [
            member
            for member in public_members(value)
            if not (inspect.getdoc(getattr(value, member)) or "").strip()
            or inspect.getdoc(getattr(value, member)) == inspect.getdoc(property)
        ]
        assert undocumented == [], f"{name}: undocumented public members"


def test_dir_lists_every_export_and_unknown_names_raise() -> None:
    assert set(socklab.__all__) <= set(dir(socklab))
    with pytest.raises(AttributeError, match=r"^module 'socklab' has no attribute 'srve'$"):
        socklab.srve  # type: ignore[attr-defined]  # noqa: B018


def modules_loaded_by(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after `statement` that a bare one does not."""
    script = textwrap.dedent(f"""
        import sys
        before = set(sys.modules)
        {statement}
        print("\\n".join(sorted(set(sys.modules) - before)))
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    return set(result.stdout.split())


def test_import_socklab_loads_only_itself() -> None:
    loaded = modules_loaded_by("import socklab")
    assert {name for name in loaded if name.startswith("socklab")} == {"socklab"}
    assert loaded.isdisjoint(IO_MODULES)


def test_first_use_of_an_export_loads_its_module_only() -> None:
    loaded = modules_loaded_by("import socklab; socklab.LineFramer")
    assert "socklab.protocol" in loaded
    assert not any(name.startswith(("socklab.runtimes", "socklab.clients")) for name in loaded)


def test_import_socklab_protocol_loads_no_io_of_its_own() -> None:
    # `socklab.errors` still imports `socket` for its OSError translation, which is moving to
    # the runtime layer (issue 17); the core itself must add no I/O module to that.
    by_errors = modules_loaded_by("import socklab.errors")
    by_core = modules_loaded_by("import socklab.protocol")
    assert (by_core & set(IO_MODULES)) <= (by_errors & set(IO_MODULES))
    assert not any(name.startswith(("socklab.runtimes", "socklab.clients")) for name in by_core)


USER_CODE = '''
"""A user's program, typed as mypy --strict wants it."""

from __future__ import annotations

import socklab
from socklab import Client, ServerHandle, Session, SessionFactory
from socklab.protocol import ConverterSession, ReplySession
from socklab.protocol.framing import FrameTooLong, LengthPrefixFramer, LineFramer, RawFramer


def reply(message: bytes) -> bytes | None:
    return None if not message else message.upper()


class Counter:
    """A session counting the messages of its connection."""

    def __init__(
        self,
        framing: str = "line",
        *,
        max_message_bytes: int = 1024,
        greet: bool = True,
        record_events: bool = False,
    ) -> None:
        self._framer = socklab.make_framer(framing, max_message_bytes)
        self._out: list[bytes] = [self._framer.encode(b"counting")] if greet else []
        self._closing = False
        self.requests_served = 0
        self.close_reason: socklab.CloseReason | None = None

    def receive_data(self, data: bytes) -> None:
        for event in self._framer.receive_data(data):
            if isinstance(event, bytes):
                self.requests_served += 1
                self._out.append(self._framer.encode(str(self.requests_served).encode()))
            else:
                self._closing = True

    def exchange(self, data: bytes) -> bytes:
        self.receive_data(data)
        return self.data_to_send()

    def receive_eof(self) -> None:
        self._closing = True

    def data_to_send(self) -> bytes:
        out, self._out = b"".join(self._out), []
        return out

    def closed(self) -> None:
        self._closing = True

    def server_stopping(self) -> None:
        self._closing = True

    def abort(self, reason: socklab.CloseReason) -> None:
        self._closing = True
        self.close_reason = reason

    @property
    def should_close(self) -> bool:
        return self._closing

    @property
    def expects_unread_input(self) -> bool:
        return False

    @property
    def has_partial_message(self) -> bool:
        return self._framer.has_partial_message


def ask(client: Client, question: bytes) -> bytes:
    return client.request(question)


def main() -> None:
    server: ServerHandle
    with socklab.serve(reply, model="threads", max_message_bytes=4096, idle_timeout_s=5) as server:
        host, port = server.address
        with socklab.connect(host, port, timeout=2.0) as client:
            answer: bytes = ask(client, b"hi")
            print(answer)
    factory: SessionFactory = Counter
    session: Session = Counter()
    with socklab.serve(session=factory, framing="length", max_clients=10) as counting:
        counting.stop()
    with socklab.serve(session=ConverterSession):
        pass
    try:
        socklab.connect("127.0.0.1", 9, transport="udp").close()
    except socklab.RefusedError as exc:
        print(exc.port)
    except socklab.SocklabError:
        raise
    framers: list[socklab.Framer] = [LineFramer(10), LengthPrefixFramer(10), RawFramer(10)]
    for framer in framers:
        for event in framer.receive_data(b"abc"):
            if isinstance(event, FrameTooLong):
                print(event.describe())
    ReplySession(reply).receive_data(b"x")
    print(socklab.__version__, session)
'''

# Each line of this file must be an error for mypy --strict (the line's comment says why).
USER_MISTAKES = """
import socklab

socklab.serve(lambda m: m, max_mesage_bytes=5)  # a misspelt limit
socklab.serve(lambda m: m, idle_timeout_s="3")  # a limit of the wrong type
socklab.srve(lambda m: m)  # a misspelt export
socklab.connect("localhost", 1).request("text")  # str, not bytes
socklab.serve(lambda m: "text")  # a reply that is not bytes
socklab.serve(session=socklab.ConverterSession, transport="udp")  # a session over UDP
socklab.serve()  # no protocol at all
"""


def docs_code() -> str:
    """docs/LIBRARY.md's code blocks, in order, as one module (tests/test_library_docs.py runs it)."""
    text = (PROJECT / "docs" / "LIBRARY.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.M | re.S)
    return "\n\n".join(blocks)


@pytest.mark.timeout(300)
def test_user_code_and_the_library_docs_pass_mypy_strict(tmp_path: Path) -> None:
    (tmp_path / "user_code.py").write_text(USER_CODE, encoding="utf-8")
    (tmp_path / "library_docs.py").write_text(docs_code(), encoding="utf-8")
    (tmp_path / "user_mistakes.py").write_text(USER_MISTAKES, encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--hide-error-context",
            "--cache-dir",
            str(tmp_path / "cache"),
            "user_code.py",
            "library_docs.py",
            "user_mistakes.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=280,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert [line for line in errors if not line.startswith("user_mistakes.py:")] == []
    mistake_lines = {
        number for number, line in enumerate(USER_MISTAKES.splitlines(), start=1) if "  # " in line
    }
    flagged = {int(line.split(":")[1]) for line in errors if line.startswith("user_mistakes.py:")}
    assert flagged == mistake_lines, result.stdout
