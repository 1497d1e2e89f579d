"""What an operator does to the whole firm, over NATS: the firm-wide kill switch and its release,
the fleet's expected build and the consent to a gateway that runs another, and the firm view.

Each function connects, acts, and disconnects; the CLI (`fixgate kill --firm`, `fixgate firm ...`)
and the admin API call them through `run`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import orjson

from fixgate.firm import names as n

SECOND = 1_000_000_000


class FirmUnreachable(RuntimeError):
    """NATS cannot be reached, or the firm's bucket is not there."""


def run(coroutine):
    """Run one of this module's coroutines to its end (from a thread without an event loop)."""
    return asyncio.run(coroutine)


async def _connect(settings):
    import nats

    async def quiet(error: Exception) -> None:      # the failure is raised below, said once
        pass

    try:
        client = await nats.connect(error_cb=quiet, servers=list(settings.servers), connect_timeout=settings.connect_timeout_seconds,
                                    allow_reconnect=False, max_reconnect_attempts=1, reconnect_time_wait=0.1,
                                    name="fixgate-operator")
    except Exception as error:
        raise FirmUnreachable(f"cannot reach NATS at {', '.join(settings.servers)}: {error or type(error).__name__}") \
            from None
    return client


async def _bucket(client, settings):
    from nats.js.api import KeyValueConfig

    js = client.jetstream(timeout=2.0)
    names = n.FirmNames(settings.name)
    try:
        return await js.key_value(names.bucket)
    except Exception:
        return await js.create_key_value(KeyValueConfig(bucket=names.bucket, history=64, replicas=settings.replicas))


async def _entries(kv, prefix: str) -> dict[str, dict[str, Any]]:
    """Return every key under `prefix` (``gateway.``) with its JSON value."""
    found: dict[str, dict[str, Any]] = {}
    try:
        keys = await kv.keys()
    except Exception:                                   # no keys at all
        return found
    for key in keys:
        if key.startswith(prefix):
            try:
                entry = await kv.get(key)
            except Exception:
                continue
            if entry.value:
                found[key[len(prefix):]] = orjson.loads(entry.value)
    return found


def alive(announcement: dict[str, Any], now_ns: int) -> bool:
    """A gateway is alive while its announcement is younger than two leases."""
    return now_ns - int(announcement.get("at_ns", 0)) <= 2 * float(announcement.get("lease_seconds", 5)) * SECOND


async def set_kill(settings, on: bool, actor: str, reason: str = "", *, wait_s: float = 5.0) -> dict[str, Any]:
    """Trip (`on`) or release the firm-wide kill switch; wait up to `wait_s` for every live gateway
    to confirm. Return the kill written and each gateway's confirmation (None: not in time)."""
    client = await _connect(settings)
    try:
        kv = await _bucket(client, settings)
        kill = {"on": on, "id": uuid.uuid4().hex, "actor": actor, "reason": reason, "at_ns": time.time_ns()}
        now = time.time_ns()
        gateways = [name for name, announcement in (await _entries(kv, "gateway.")).items()
                    if alive(announcement, now)]
        confirms: dict[str, Any] = {name: None for name in gateways}
        watcher = await kv.watch("confirm.>")
        try:
            async def drain_initial() -> None:
                async for entry in watcher:
                    if entry is None:
                        return
            await asyncio.wait_for(drain_initial(), 2.0)
            kill["at_ns"] = time.time_ns()                  # the delays count from the write itself
            revision = await kv.put(n.KILL, orjson.dumps(kill))
            deadline = time.monotonic() + wait_s

            async def collect() -> None:
                async for entry in watcher:
                    if entry is None or not entry.value:
                        continue
                    confirm = orjson.loads(entry.value)
                    if confirm.get("id") == kill["id"]:
                        confirm["delay_ms"] = round((int(confirm["applied_ns"]) - kill["at_ns"]) / 1e6, 3)
                        confirm["seen_ms"] = round((time.time_ns() - kill["at_ns"]) / 1e6, 3)
                        confirms[confirm["gateway"]] = confirm
                        if all(value is not None for value in confirms.values()):
                            return
            if gateways:
                try:
                    await asyncio.wait_for(collect(), max(deadline - time.monotonic(), 0.01))
                except asyncio.TimeoutError:
                    pass
        finally:
            await watcher.stop()
        return {"kill": kill, "revision": revision, "confirms": confirms}
    finally:
        await client.close()


async def set_expected_build(settings, version: str, commit: str, actor: str) -> dict[str, Any]:
    """Name the fleet's build: a gateway running another is reduce-only until confirmed."""
    client = await _connect(settings)
    try:
        kv = await _bucket(client, settings)
        value = {"version": version, "commit": commit, "actor": actor, "at_ns": time.time_ns()}
        await kv.put(n.EXPECTED_BUILD, orjson.dumps(value))
        return value
    finally:
        await client.close()


async def confirm_build(settings, gateway: str, actor: str) -> dict[str, Any]:
    """Let `gateway` trade fully on the build it announces, though it is not the fleet's."""
    client = await _connect(settings)
    try:
        kv = await _bucket(client, settings)
        announcements = await _entries(kv, "gateway.")
        if gateway not in announcements:
            raise FirmUnreachable(f"no gateway {gateway!r} has announced itself to firm {settings.name!r} "
                                  f"(gateways: {', '.join(sorted(announcements)) or 'none'})")
        announced = announcements[gateway]
        value = {"version": announced.get("version"), "commit": announced.get("commit"), "actor": actor,
                 "at_ns": time.time_ns()}
        await kv.put(n.FirmNames.confirmed_build_key(gateway), orjson.dumps(value))
        return value
    finally:
        await client.close()


async def firm_status(settings) -> dict[str, Any]:
    """Every gateway's announcement, the kill switch, the builds, flagged where they differ."""
    client = await _connect(settings)
    try:
        kv = await _bucket(client, settings)
        now = time.time_ns()
        gateways = await _entries(kv, "gateway.")
        confirms = await _entries(kv, "confirm.")
        confirmed = await _entries(kv, "build.confirmed.")
        try:
            kill_entry = await kv.get(n.KILL)
            kill = orjson.loads(kill_entry.value) if kill_entry.value else None
        except Exception:
            kill = None
        try:
            expected_entry = await kv.get(n.EXPECTED_BUILD)
            expected = orjson.loads(expected_entry.value) if expected_entry.value else None
        except Exception:
            expected = None
        builds = {(value.get("version"), value.get("commit")) for value in gateways.values() if alive(value, now)}
        rows = {}
        for name, value in sorted(gateways.items()):
            build = (value.get("version"), value.get("commit"))
            if expected:
                differs = build != (expected.get("version"), expected.get("commit"))
            else:
                differs = len(builds) > 1
            rows[name] = {**value, "alive": alive(value, now), "age_s": round((now - int(value.get("at_ns", 0))) / 1e9, 3),
                          "build_differs": differs, "build_confirmed": confirmed.get(name),
                          "kill_confirm": confirms.get(name)}
        return {"firm": settings.name, "kill": kill, "expected_build": expected, "gateways": rows,
                "totals": {"gateways": len(rows), "alive": sum(1 for row in rows.values() if row["alive"]),
                           "gross_exposure": sum(float(row.get("gross_exposure", 0)) for row in rows.values()
                                                 if row["alive"]),
                           "open_orders": sum(int(row.get("open_orders", 0)) for row in rows.values() if row["alive"])}}
    finally:
        await client.close()


async def stream_event_count(settings, gateway: str) -> int:
    """The records the stream holds for `gateway` (the sum of its orders messages' counts)."""
    from nats.js.api import DeliverPolicy

    client = await _connect(settings)
    try:
        js = client.jetstream(timeout=5.0)
        names = n.FirmNames(settings.name)
        subscription = await js.subscribe(names.subject(gateway, n.ORDERS), ordered_consumer=True,
                                          deliver_policy=DeliverPolicy.ALL)
        total = 0
        while True:
            try:
                message = await subscription.next_msg(timeout=2.0)
            except Exception:
                return total
            total += int((message.headers or {}).get(n.COUNT, 0))
            if message.metadata.num_pending == 0:
                return total
    finally:
        await client.close()
