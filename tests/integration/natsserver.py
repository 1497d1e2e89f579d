"""A real NATS server with JetStream for one test: `nats-server -js` on a free 127.0.0.1 port, its
store in the test's folder, stopped (and restartable on the same port and store) by the test."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from pathlib import Path

from .conftest import free_port


def nats_server_binary() -> str:
    found = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not Path(found).exists():
        raise RuntimeError("nats-server is not installed: `apt-get install -y nats-server` (Debian's package)")
    return found


class NatsServer:
    """One JetStream server; `cluster` joins it to others (a name, a route port, the routes)."""

    def __init__(self, directory: Path, *, name: str = "n1", port: int | None = None,
                 cluster: tuple[str, int, list[int]] | None = None) -> None:
        self.directory = Path(directory)
        self.name = name
        self.port = port or free_port()
        self.cluster = cluster
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> "NatsServer":
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(self.port), "-n", self.name,
                   "-sd", str(self.directory / "store")]
        if self.cluster is not None:
            cluster_name, route_port, routes = self.cluster
            command += ["--cluster_name", cluster_name, "--cluster", f"nats://127.0.0.1:{route_port}",
                        "--routes", ",".join(f"nats://127.0.0.1:{port}" for port in routes)]
        self.process = subprocess.Popen(command, stdout=open(self.directory / "server.log", "ab"),
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"nats-server exited: {(self.directory / 'server.log').read_text()[-2000:]}")
                time.sleep(0.05)
        raise RuntimeError("nats-server did not listen in time")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


def stream_messages(url: str, stream: str, subject_filter: str | None = None) -> list:
    """Every message of `stream` (optionally one subject), in stream order, as (subject, headers, data)."""

    async def read():
        import nats

        client = await nats.connect(url, allow_reconnect=False)
        try:
            js = client.jetstream()
            try:
                info = await js.stream_info(stream)
            except Exception:
                return []
            found = []
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                try:
                    message = await js.get_msg(stream, seq)
                except Exception:
                    continue
                if subject_filter is None or message.subject == subject_filter:
                    found.append((message.subject, dict(message.headers or {}), message.data))
            return found
        finally:
            await client.close()

    return asyncio.run(read())


def kv_get(url: str, bucket: str, key: str):
    """The JSON value of `key` in `bucket`, or None."""
    import orjson

    async def read():
        import nats

        client = await nats.connect(url, allow_reconnect=False)
        try:
            try:
                kv = await client.jetstream().key_value(bucket)
                entry = await kv.get(key)
            except Exception:
                return None
            return orjson.loads(entry.value) if entry.value else None
        finally:
            await client.close()

    return asyncio.run(read())
