"""Listening ports: whether one is free, and a message that names the setting when it is not."""

from __future__ import annotations

import errno
import socket


def port_free(port: int, host: str = "") -> bool:
    """Return True when nothing listens on `port` (QuickFIX's acceptor listens on every interface)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def listen_problem(setting: str, host: str, port: int, error: OSError | None = None) -> str:
    """Say why `setting` cannot be listened on, naming the port, the address and the setting."""
    address = f"{host or '0.0.0.0'}:{port}"
    if error is None or error.errno == errno.EADDRINUSE:
        return (f"{setting} {port} ({address}) is already in use: another program listens there (another "
                f"fixgate?); stop it or change {setting}")
    return f"{setting} {port}: cannot listen on {address}: {error.strerror or error}"
