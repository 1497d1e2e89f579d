"""Real QuickFIX sessions on free 127.0.0.1 ports: the venue simulator, the gateway and FIX clients.

The simulator's market maker quotes once at start and then holds still (a long quote interval; the top
of book is still sent again every second, so quotes stay fresh), so prices are known: AAPL bids
189.99/189.98/189.97 and offers 190.01/190.02/190.03, 20 shares each.
"""

from __future__ import annotations

import dataclasses
import itertools
import socket
import time
from pathlib import Path

import pytest

from fixgate import config as configuration
from fixgate.fix.client import FixClient
from fixgate.gateway import Gateway
from fixgate.ops import logging as logs
from fixgate.simulator.venue import VenueSimulator

_used_ports: set[int] = set()


def free_port() -> int:
    """Return a port nothing listens on (on every interface, as QuickFIX binds them all)."""
    while True:
        with socket.socket() as probe:
            probe.bind(("", 0))
            port = probe.getsockname()[1]
        if port not in _used_ports:
            _used_ports.add(port)
            return port


def stack_config(*, simulator_overrides=None, client_overrides=None, venue_overrides=None, **risk_overrides):
    """Return the bundled configuration on free ports, with a still market and a second client."""
    base = configuration.load()
    acceptor_port, simulator_port, admin_port = free_port(), free_port(), free_port()
    second = dataclasses.replace(base.clients[0], name="client2", comp_id="CLIENT2", instruments=("AAPL",),
                                 cancel_on_disconnect=True)
    return dataclasses.replace(
        base,
        acceptor=dataclasses.replace(base.acceptor, port=acceptor_port),
        admin=dataclasses.replace(base.admin, port=admin_port),
        simulator=dataclasses.replace(base.simulator, **{"port": simulator_port, "quote_interval_ms": 3_600_000,
                                                         **(simulator_overrides or {})}),
        venues=tuple(dataclasses.replace(venue, port=simulator_port, reconnect_seconds=1, **(venue_overrides or {}))
                     for venue in base.venues),
        clients=(dataclasses.replace(base.clients[0], **(client_overrides or {})), second),
        risk=dataclasses.replace(base.risk, **risk_overrides),
    )


class Stack:
    """A simulator, a gateway and the clients of one test."""

    def __init__(self, config, directory: Path, *, venue_config=None) -> None:
        self.config = config
        self.directory = directory
        self.venue = VenueSimulator(venue_config or config, directory / "simulator", message_log=False)
        self.gateway = Gateway(config, state_dir=directory / "gateway", message_log=False)
        self.clients: list[FixClient] = []
        self._ids = itertools.count(1)

    def start(self) -> "Stack":
        self.venue.start()
        self.gateway.start()
        assert self.gateway.wait_for_venues(10, ready=True), "the gateway did not log on to the simulator"
        deadline = time.monotonic() + 5
        while self.gateway.book.quotes.is_stale(0, time.time_ns()) and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def client(self, comp_id: str = "CLIENT1", *, username: str = "demo", password: str = "demo",
               wait: bool = True) -> FixClient:
        client = FixClient(comp_id, self.config.gateway.comp_id, "127.0.0.1", self.config.acceptor.port,
                           self.directory / f"client-{comp_id}-{next(self._ids)}", username=username,
                           password=password)
        client.start()
        self.clients.append(client)
        if wait:
            assert client.wait_logged_on(10), f"{comp_id} did not log on"
        return client

    def settle(self, timeout: float = 3.0) -> None:
        """Wait until the state thread has applied every event the engine pushed so far."""
        assert self.gateway.settle(timeout), "the state thread did not catch up"

    def stop(self) -> None:
        for client in self.clients:
            client.stop(0.2)
        self.gateway.stop(cancel_open_orders=False, logout_timeout=0.2)
        self.venue.stop(0.2)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05):
    """Poll `predicate` until it gives a true value or `timeout` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


@pytest.fixture
def nats_server(tmp_path):
    """A NATS JetStream server of the test's own on 127.0.0.1, stopped after it."""
    from .natsserver import NatsServer

    server = NatsServer(tmp_path / "nats").start()
    yield server
    server.stop()


@pytest.fixture(scope="session", autouse=True)
def quiet_logs():
    logs.configure("WARNING", "console")


@pytest.fixture
def stack(tmp_path):
    """A started simulator and gateway on free ports; stopped after the test."""
    running = Stack(stack_config(), tmp_path).start()
    yield running
    running.stop()


@pytest.fixture
def make_stack(tmp_path):
    """Build and start a stack with risk overrides: ``make_stack(max_leverage=2.0)``."""
    stacks = []

    def build(**overrides):
        running = Stack(stack_config(**overrides), tmp_path / f"stack{len(stacks)}").start()
        stacks.append(running)
        return running

    yield build
    for running in stacks:
        running.stop()


@pytest.fixture
def free_ports():
    """Return a function that gives free ports."""
    return free_port


@pytest.fixture
def config_for_ports():
    """Return the test configuration builder (free ports, still market, two clients)."""
    return stack_config
