"""Fixtures of the robustness suite: servers per model from RUNTIMES, scales, probes, fd limits.

Every test runs against the real `socklab converter server --model M` subprocess on loopback
(or in a network namespace the test creates), for every model of the `RUNTIMES` registry, so a
model added there is attacked by the whole suite without a line changed here.

A model that cannot keep a guarantee *by design* is listed in `BY_DESIGN` with the reason; the
test then runs as a strict expected failure, so the day the model does keep it, the suite says
so. Nothing is left out silently. Those expected failures run with the full scale (`-m slow`),
not in every `make test`: each waits out the deadlines it is bound to miss (about 80 s of CI).

Scales: each test takes the `scale` fixture, "ci" (the bracketed figures of issue 6, in every
`make test`) or "full" (marked `slow`: `pytest -m slow tests/robustness`).
"""

from __future__ import annotations

import resource
from collections.abc import Callable, Iterator, Sequence

import pytest

from socklab.runtimes import RUNTIMES
from tests.robustness.observed_server import ObservedServer, server_arguments
from tests.robustness.probe_client import ProbeProcess
from tests.socklab_process import SocklabProcess, free_port

# (test item, model) -> why the model cannot keep that guarantee by its design.
BY_DESIGN: dict[tuple[str, str], str] = {
    ("slowloris", "iterative"): (
        "the iterative model serves one client at a time: each slowloris connection holds it "
        "until its message deadline, and a normal client waits for all of them"
    ),
    ("kills", "iterative"): (
        "the iterative model serves one client at a time: the other clients wait in the listen "
        "backlog, so the server never holds the 100 connections the test counts"
    ),
    ("connection_cap", "iterative"): (
        "the iterative model greets one connection at a time: the 10 admitted clients cannot "
        "all be served at once"
    ),
    ("clients_per_host", "iterative"): (
        "the iterative model greets one connection at a time: the 3 clients a host may hold "
        "cannot all be served at once"
    ),
    ("upper_silent_clients", "iterative"): (
        "the iterative model serves one client at a time: each silent client holds it until "
        "its 10 s deadline, as the slides' server did"
    ),
    ("shutdown", "iterative"): (
        "the iterative model serves one client at a time: at SIGTERM the other open clients "
        "have not been greeted, so their requests are never in flight"
    ),
}

SCALES = ["ci", pytest.param("full", marks=pytest.mark.slow)]


def stream_models() -> list[str]:
    return sorted(name for name, info in RUNTIMES.items() if "tcp" in info.transports)


def datagram_models() -> list[str]:
    return sorted(name for name, info in RUNTIMES.items() if "udp" in info.transports)


def model_params(item: str, models: Sequence[str]) -> list[object]:
    """`models` as pytest params, each a strict xfail where BY_DESIGN names it for `item`."""
    params: list[object] = []
    for model in models:
        reason = BY_DESIGN.get((item, model))
        marks = [pytest.mark.xfail(strict=True, reason=reason), pytest.mark.slow] if reason else []
        params.append(pytest.param(model, marks=marks, id=model))
    return params


@pytest.fixture(params=SCALES)
def scale(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session", autouse=True)
def raise_open_file_limit() -> None:
    """Thousands of sockets per test: lift the soft fd limit to the hard one (servers inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


LaunchServer = Callable[..., ObservedServer]


def start_observed_server(
    start: Callable[..., SocklabProcess],
    model: str,
    framing: str = "line",
    extra: Sequence[str] = (),
    *,
    udp: bool = False,
    port: int | None = None,
) -> ObservedServer:
    chosen_port = free_port() if port is None else port
    process = start(server_arguments(model, framing, chosen_port, extra, udp=udp))
    host, bound_port = process.wait_listening()
    return ObservedServer(process, host, bound_port, model, framing)


@pytest.fixture
def launch_server(start_socklab: Callable[..., SocklabProcess]) -> LaunchServer:
    """`launch_server(model, framing, [flags])`: a converter server subprocess, stopped at the end."""

    def launch(
        model: str, framing: str = "line", extra: Sequence[str] = (), *, udp: bool = False
    ) -> ObservedServer:
        return start_observed_server(start_socklab, model, framing, extra, udp=udp)

    return launch


@pytest.fixture
def start_probe() -> Iterator[Callable[..., ProbeProcess]]:
    """`start_probe(server, count, interval_s, fresh_connections=...)`: a ready probe client."""
    probes: list[ProbeProcess] = []

    def start(
        server: ObservedServer, count: int, interval_s: float, *, fresh_connections: bool
    ) -> ProbeProcess:
        probe = ProbeProcess(
            server.address,
            framing=server.framing,
            count=count,
            interval_s=interval_s,
            fresh_connections=fresh_connections,
        )
        probes.append(probe)
        return probe

    yield start
    for probe in probes:
        probe.kill()
