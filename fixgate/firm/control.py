"""What an operator does to the whole firm, over NATS: the firm-wide kill switch and its release,
the fleet's expected build and the consent to a gateway that runs another, and the firm view.

Each function connects, acts, and disconnects; the CLI (`fixgate kill --firm`, `fixgate firm ...`)
and the admin API call them through `run`.
"""

from __future__ import annotations

import asyncio
import math
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
    """A gateway is alive while its announcement is younger than two leases, and did not say it stopped."""
    return (not announcement.get("stopped")
            and now_ns - int(announcement.get("at_ns", 0)) <= 2 * float(announcement.get("lease_seconds", 5)) * SECOND)


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


async def _update_ledger(kv, key: str, change) -> dict[str, Any]:
    """Compare-and-set the ledger at `key` with `change(value) -> value` until no other writer came first."""
    from nats.js.errors import KeyWrongLastSequenceError

    for _ in range(20):
        entry = await kv.get(key)
        value = change(orjson.loads(entry.value))
        value["at_ns"] = time.time_ns()
        try:
            await kv.update(key, orjson.dumps(value), last=entry.revision)
            return value
        except KeyWrongLastSequenceError:
            await asyncio.sleep(0.01)
    raise FirmUnreachable(f"{key}: the gateways kept changing it; try again")


async def release_budget(settings, gateway: str, actor: str) -> dict[str, Any]:
    """Give a stopped gateway's unused allocations back to the firm (a gateway that stops gracefully
    does so itself; one that crashed would hold them forever). What it last said it used stays its
    own. Refused while the gateway announces itself, and for two leases after: a gateway restarted
    trusts its budget file only within a lease of the ledger's last word."""
    client = await _connect(settings)
    try:
        kv = await _bucket(client, settings)
        announcement = (await _entries(kv, "gateway.")).get(gateway)
        if announcement is not None and alive(announcement, time.time_ns()):
            raise FirmUnreachable(f"gateway {gateway!r} is alive (it announced itself "
                                  f"{(time.time_ns() - int(announcement['at_ns'])) / 1e9:.1f} s ago): stop it first; "
                                  "a live gateway gives back what it does not use by itself")
        # What it used stays its own: its orders of the day were sent, its exposure is still held.
        used = {name: int(math.ceil(float(meter.get("usage", 0))))
                for name, meter in ((announcement or {}).get("budgets") or {}).items()}
        released, kept = {}, {}
        for name in sorted(await _entries(kv, "budget.")):
            def change(value: dict[str, Any]) -> dict[str, Any]:
                allocations = value.setdefault("allocations", {})
                held = int(allocations.pop(gateway, 0))
                kept[name] = min(used.get(name, 0), held)
                released[name] = held - kept[name]
                if kept[name]:
                    allocations[gateway] = kept[name]
                value.get("wants", {}).pop(gateway, None)
                value["by"] = f"release by {actor}"
                return value
            await _update_ledger(kv, f"budget.{name}", change)
        return {"gateway": gateway, "released": released, "kept_as_used": kept, "actor": actor}
    finally:
        await client.close()


async def set_limit(settings, name: str, value: int, actor: str) -> dict[str, Any]:
    """Change a firm-wide limit in the firm's ledger. Lowered below what is allocated, every gateway
    gives back all it does not use at once, and none takes more until the allocations fit again."""
    client = await _connect(settings)
    try:
        kv = await _bucket(client, settings)
        if name not in await _entries(kv, "budget."):
            raise FirmUnreachable(f"the firm has no limit {name!r} (limits: "
                                  f"{', '.join(sorted(await _entries(kv, 'budget.'))) or 'none yet'})")

        def change(ledger: dict[str, Any]) -> dict[str, Any]:
            ledger["limit"] = int(value)
            ledger["by"] = f"limit set by {actor}"
            return ledger
        ledger = await _update_ledger(kv, f"budget.{name}", change)
        return {"limit": name, "value": int(value), "allocated": sum(ledger.get("allocations", {}).values()),
                "actor": actor}
    finally:
        await client.close()


def _net_positions(stream: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The firm's net position per symbol, over every gateway and account (exact decimals as text)."""
    from decimal import Decimal

    totals: dict[str, Decimal] = {}
    for view in stream.values():
        for row in view["positions"]:
            totals[row["symbol"]] = totals.get(row["symbol"], Decimal(0)) + Decimal(row["quantity"])
    return {symbol: format(quantity.normalize(), "f") for symbol, quantity in sorted(totals.items()) if quantity}


async def firm_status(settings, *, from_stream: bool = True) -> dict[str, Any]:
    """Every gateway's announcement, the kill switch, the builds (flagged where they differ), the
    firm-wide limits with their split, and (`from_stream`) each gateway's open orders and positions
    replayed from its records on the stream, with the firm's totals."""
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
        stream = await _stream_views(client, settings, gateways) if from_stream else {}
        ledgers = await _entries(kv, "budget.")
        return {"firm": settings.name, "kill": kill, "expected_build": expected, "gateways": rows,
                "stream": stream, "limits": _limits(ledgers, gateways),
                "totals": {"gateways": len(rows), "alive": sum(1 for row in rows.values() if row["alive"]),
                           "gross_exposure": sum(float(row.get("gross_exposure", 0)) for row in rows.values()
                                                 if row["alive"]),
                           "open_orders": sum(int(row.get("open_orders", 0)) for row in rows.values() if row["alive"]),
                           "stream_open_orders": sum(view["open_orders"] for view in stream.values()),
                           "stream_gross_exposure": round(sum(float(view["gross_exposure"]) for view in stream.values()),
                                                          2),
                           "stream_positions": _net_positions(stream)}}
    finally:
        await client.close()


async def _messages(client, subject: str):
    """Every message of `subject` on the stream, oldest first, as (headers, data); ends at the last."""
    from nats.js.api import DeliverPolicy

    js = client.jetstream(timeout=5.0)
    subscription = await js.subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
    try:
        while True:
            try:
                message = await subscription.next_msg(timeout=2.0)
            except Exception:                       # nothing (more) within 2 s: none on the subject
                return
            yield message.headers or {}, message.data
            if message.metadata.num_pending == 0:
                return
    finally:
        await subscription.unsubscribe()


async def stream_event_count(settings, gateway: str) -> int:
    """The records the stream holds for `gateway` (the sum of its orders messages' counts)."""
    client = await _connect(settings)
    try:
        total = 0
        async for headers, _ in _messages(client, n.FirmNames(settings.name).subject(gateway, n.ORDERS)):
            total += int(headers.get(n.COUNT, 0))
        return total
    finally:
        await client.close()


async def _stream_views(client, settings, gateways: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each announced gateway's open orders and positions, replayed from its records on the stream."""
    from fixgate.firm.feed import GatewayView

    names = n.FirmNames(settings.name)
    views = {}
    for gateway, announcement in sorted(gateways.items()):
        catalogue = announcement.get("catalogue")
        if not catalogue:
            continue
        view = GatewayView(catalogue)
        async for headers, data in _messages(client, names.subject(gateway, n.ORDERS)):
            view.take(headers.get(n.JOURNAL), data)
        views[gateway] = view.summary()
    return views


def _limits(ledgers: dict[str, dict[str, Any]], gateways: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each firm-wide limit: the ledger's split and what each gateway says it uses of its budget."""
    rows = {}
    for name, ledger in sorted(ledgers.items()):
        allocations = {gateway: int(amount) for gateway, amount in ledger.get("allocations", {}).items()}
        usage = {gateway: float(value["budgets"][name]["usage"]) for gateway, value in gateways.items()
                 if name in (value.get("budgets") or {})}
        rows[name] = {"limit": int(ledger["limit"]), "allocated": sum(allocations.values()),
                      "over_allocated": sum(allocations.values()) > int(ledger["limit"]),
                      "used": round(sum(usage.values()), 2), "allocations": allocations, "usage": usage,
                      "wants": {gateway: int(amount) for gateway, amount in ledger.get("wants", {}).items()}}
    return rows
