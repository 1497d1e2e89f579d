"""The firm's order events as execution reports, for a drop copy: every gateway's orders, read from
the firm's stream, each event turned into the report a compliance desk reads, tagged with the
gateway and the client.

`FirmOrders` keeps each gateway's order views (the same OMS logic the gateway runs, fed with the
same records) from the catalogue the gateway announces (its instruments, clients and venues).
`DropCopyFeed` reads the stream for one compliance session through a durable JetStream consumer:
at its start it rebuilds the views from the stream up to what that session has already been sent
(the consumer's acknowledgement floor), then turns each further message into reports, hands them
to `send` one at a time, and acknowledges the message once every report of it went out. While the
session is away nothing is fetched; a report that could not be sent is sent again first.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable

import orjson
import structlog

from fixgate.core import events as ev
from fixgate.core.events import events_from_bytes
from fixgate.core.messages import ExecType
from fixgate.core.numbers import average_text, units_text
from fixgate.core.orders import Instrument, OrderManager, Orders, OrderView
from fixgate.firm import names as n
from fixgate.reference.codes import reject_name, reject_text

log = structlog.get_logger("fixgate.dropcopy")

EXEC_TYPES = {ev.ACCEPTED: ExecType.PENDING_NEW, ev.ACKED: ExecType.NEW, ev.FILLED: ExecType.TRADE,
              ev.CANCELED: ExecType.CANCELED, ev.REPLACED: ExecType.REPLACED, ev.REJECTED: ExecType.REJECTED,
              ev.VENUE_REJECTED: ExecType.REJECTED, ev.EXPIRED: ExecType.EXPIRED,
              ev.DONE_FOR_DAY: ExecType.DONE_FOR_DAY, ev.CANCEL_REQUESTED: ExecType.PENDING_CANCEL,
              ev.REPLACE_ACCEPTED: ExecType.PENDING_REPLACE, ev.RESTATED: ExecType.RESTATED,
              ev.TRADE_CORRECTED: ExecType.TRADE_CORRECT}


@dataclass(frozen=True, slots=True)
class DropReport:
    """One execution report of the drop copy (the fields of an ExecutionReport, as wire text)."""

    gateway: str
    client: str                     # the client session's name at that gateway
    account: str
    exec_id: str                    # <gateway>-<journal id>-<event sequence>: the same event, the same id
    exec_type: str
    ord_status: str
    order_id: str
    cl_ord_id: str
    symbol: str
    side: str
    ord_type: str
    order_qty: str
    price: str | None
    leaves_qty: str
    cum_qty: str
    avg_px: str
    last_qty: str | None
    last_px: str | None
    text: str | None
    transact_time_ns: int
    venue: str


def catalogue_instruments(catalogue: dict[str, Any]) -> list[Instrument]:
    """The instruments a gateway's announced catalogue names, by instrument id."""
    return [Instrument(item["symbol"], item["venue"], Decimal(item["lot_size"]), Decimal(item["tick_size"]))
            for item in catalogue["instruments"]]


class GatewayView:
    """One gateway's orders and positions, replayed from its records on the stream with the gateway's
    own code (the recovery replayer: the OMS view, positions, the day's figures). A message of another
    journal (the gateway started on a new state directory) starts the view again, as the gateway did."""

    def __init__(self, catalogue: dict[str, Any], starting_equity: Decimal = Decimal(0)) -> None:
        self.catalogue = catalogue
        self.starting_equity = starting_equity
        self.journal: str | None = None
        self.events = 0
        self.messages = 0
        self._reset()

    def _reset(self) -> None:
        from fixgate.core.positions import PositionTracker
        from fixgate.core.recovery import DailyFigures, Replayer

        instruments = catalogue_instruments(self.catalogue)
        self.orders = Orders(instruments, list(self.catalogue["sessions"]), list(self.catalogue["venues"]))
        self.positions = PositionTracker(self.starting_equity, instruments)
        self.replayer = Replayer(self.orders, self.positions, DailyFigures(0))

    def take(self, journal: str | None, data: bytes) -> None:
        """Apply one orders message (whole records)."""
        if journal != self.journal:
            if self.journal is not None:
                self._reset()
            self.journal = journal
        self.messages += 1
        for event in events_from_bytes(data):
            if event.kind == ev.FILLED and 0 <= event.instrument_id < len(self.orders.instruments):
                self.positions.mark(event.instrument_id, event.price_ticks)      # valued at its last fill
            self.replayer.apply(event)
            self.events += 1

    def summary(self) -> dict[str, Any]:
        snapshot = self.positions.snapshot()
        return {"journal": self.journal, "messages": self.messages, "events": self.events,
                "last_seq": self.replayer.last_seq,
                "open_orders": sum(1 for view in self.orders.by_id.values() if view.live),
                "positions": [{"account": row["account"], "symbol": row["symbol"], "quantity": row["quantity"],
                               "mark": row["mark"]} for row in snapshot["positions"]
                              if Decimal(row["quantity"]) != 0],
                "gross_exposure": snapshot["gross_exposure"]}


class FirmOrders:
    """Every gateway's order views, built from the records of the stream."""

    def __init__(self) -> None:
        self.managers: dict[str, OrderManager] = {}
        self.catalogues: dict[str, dict[str, Any]] = {}

    def know(self, gateway: str, catalogue: dict[str, Any]) -> None:
        """Take a gateway's catalogue (its announcement): instruments, client sessions, venues."""
        if self.catalogues.get(gateway) == catalogue:
            return
        instruments = catalogue_instruments(catalogue)
        manager = self.managers.get(gateway)
        if manager is None:
            orders = Orders(instruments, list(catalogue["sessions"]), list(catalogue["venues"]))
            self.managers[gateway] = OrderManager(orders)
        else:                                        # restarted with another configuration
            manager.orders.instruments = instruments
            manager.orders.sessions = list(catalogue["sessions"])
            manager.orders.venues = list(catalogue["venues"])
        self.catalogues[gateway] = catalogue

    def covers(self, gateway: str, data: bytes) -> bool:
        """True when the catalogue known for `gateway` names every instrument and session of `data`."""
        catalogue = self.catalogues.get(gateway)
        if catalogue is None:
            return False
        instruments, sessions = len(catalogue["instruments"]), len(catalogue["sessions"])
        return all(event.instrument_id < instruments and event.session_id < sessions
                   for event in events_from_bytes(data) if event.kind in EXEC_TYPES)

    def reports(self, gateway: str, journal_id: str, data: bytes) -> list[DropReport]:
        """Apply one message's records; return the reports they make, in order."""
        manager = self.managers.get(gateway)
        if manager is None:
            raise KeyError(f"gateway {gateway!r} has not announced its catalogue")
        found = []
        for event in events_from_bytes(data):
            exec_type = EXEC_TYPES.get(event.kind)
            if exec_type is None:
                continue                             # engine events, and cancel/replace rejects (35=9)
            view = manager.apply(event)
            if view is None:
                continue
            found.append(self._report(gateway, journal_id, event, view, exec_type))
        return found

    @staticmethod
    def _report(gateway: str, journal_id: str, event, view: OrderView, exec_type: str) -> DropReport:
        fill = event.kind == ev.FILLED
        text = None
        if event.kind == ev.REJECTED:              # refused by the gateway: its reason, by code
            text = f"{reject_name(event.code)}: {reject_text(event.code)}"
        elif event.kind == ev.VENUE_REJECTED:
            text = view.reject_text or None
        return DropReport(
            gateway=gateway, client=view.session, account=view.account,
            exec_id=f"{gateway}-{journal_id[:8]}-{event.seq}", exec_type=exec_type, ord_status=view.status,
            order_id=f"{gateway}:{view.gateway_order_id or view.order_id}", cl_ord_id=view.cl_ord_id,
            symbol=view.symbol, side=view.side, ord_type=view.ord_type, order_qty=view.order_qty, price=view.price,
            leaves_qty=units_text(view.leaves_lots, view.lot), cum_qty=units_text(view.cum_lots, view.lot),
            avg_px=average_text(view.cost, view.cum_lots, view.tick),
            last_qty=units_text(event.qty_lots, view.lot) if fill else None,
            last_px=units_text(event.price_ticks, view.tick) if fill else None,
            text=text, transact_time_ns=event.recv_ns or time.time_ns(), venue=view.venue)


class DropCopyFeed:
    """The firm's reports for one compliance session, in stream order, sent once each.

    Parameters
    ----------
    settings : fixgate.config.FirmSettings
    consumer : str
        The durable consumer's name (one per compliance session: where it left off).
    send : callable
        Sends one report to the session; returns False when it cannot (the session is away).
    ready : callable
        True while the session can take reports.
    """

    def __init__(self, settings, consumer: str, send: Callable[[DropReport, bool], bool],
                 ready: Callable[[], bool]) -> None:
        self.settings = settings
        self.names = n.FirmNames(settings.name)
        self.consumer = consumer
        self.send = send
        self.ready = ready
        self.orders = FirmOrders()
        self.sent = 0
        self.messages = 0
        self.connected = False
        self.last_error = ""
        self._pending: tuple[Any, list[DropReport], int, bool] | None = None
        self._stopping = False
        self._said = ""

    def stop(self) -> None:
        self._stopping = True

    async def run(self) -> None:
        """Consume until stopped, reconnecting to NATS as needed."""
        backoff = 0.2
        while not self._stopping:
            try:
                await self._session()
                backoff = 0.2
            except Exception as error:
                error_text = f"{type(error).__name__}: {error}"
                if error_text != self._said:             # said once per outage, never a flood
                    log.warning("dropcopy_feed_interrupted", consumer=self.consumer, error=error_text)
                self.last_error = self._said = error_text
            self.connected = False
            self._pending = None                     # redelivered: the consumer never had its ack
            deadline = time.monotonic() + backoff
            while time.monotonic() < deadline:
                if self._stopping:
                    return
                await asyncio.sleep(0.05)
            backoff = min(backoff * 2, 2.0)

    async def _catalogue(self, kv, gateway: str) -> None:
        entry = await kv.get(self.names.gateway_key(gateway))
        self.orders.know(gateway, orjson.loads(entry.value)["catalogue"])

    async def _session(self) -> None:
        import nats
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        async def on_error(error: Exception) -> None:
            self.last_error = f"{type(error).__name__}: {error}"

        client = await nats.connect(servers=list(self.settings.servers), allow_reconnect=False, error_cb=on_error,
                                    connect_timeout=self.settings.connect_timeout_seconds, max_reconnect_attempts=1,
                                    reconnect_time_wait=0.1, name=f"fixgate-dropcopy-{self.consumer}")
        try:
            js = client.jetstream(timeout=5.0)
            kv = await js.key_value(self.names.bucket)
            subject = f"fixgate.{self.settings.name}.*.{n.ORDERS}"
            self.orders = FirmOrders()
            subscription = await js.pull_subscribe(
                subject, durable=self.consumer, stream=self.names.stream,
                config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
                                      max_ack_pending=1, ack_wait=60.0))
            floor = (await subscription.consumer_info()).ack_floor.stream_seq
            await self._rebuild(js, kv, subject, floor)
            self.connected = True
            self.last_error = self._said = ""
            log.info("dropcopy_feed_started", consumer=self.consumer, after_stream_seq=floor)
            while not self._stopping:
                if not self.ready():
                    await asyncio.sleep(0.05)
                    continue
                if self._pending is None:
                    try:
                        messages = await subscription.fetch(1, timeout=0.5)
                    except (asyncio.TimeoutError, nats.errors.TimeoutError):
                        continue
                    message = messages[0]
                    headers = message.headers or {}
                    gateway = headers[n.GATEWAY]
                    if not self.orders.covers(gateway, message.data):
                        await self._catalogue(kv, gateway)
                    again = message.metadata.num_delivered > 1
                    self._pending = (message, self.orders.reports(gateway, headers[n.JOURNAL], message.data), 0, again)
                message, reports, index, again = self._pending
                while index < len(reports):
                    if not self.send(reports[index], again):
                        break
                    index += 1
                    self.sent += 1
                if index < len(reports):
                    self._pending = (message, reports, index, again)
                    await asyncio.sleep(0.05)
                    continue
                await message.ack_sync()
                self.messages += 1
                self._pending = None
        finally:
            await client.close()

    async def _rebuild(self, js, kv, subject: str, floor: int) -> None:
        """Apply the messages up to `floor` (sent before) to the views, sending nothing."""
        if floor <= 0:
            return
        from nats.js.api import DeliverPolicy

        subscription = await js.subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
        try:
            while True:
                message = await subscription.next_msg(timeout=5.0)
                if message.metadata.sequence.stream > floor:
                    break
                headers = message.headers or {}
                gateway = headers[n.GATEWAY]
                if not self.orders.covers(gateway, message.data):
                    await self._catalogue(kv, gateway)
                self.orders.reports(gateway, headers[n.JOURNAL], message.data)
                if message.metadata.sequence.stream == floor:
                    break
        finally:
            await subscription.unsubscribe()
