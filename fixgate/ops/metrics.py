"""Every Prometheus metric of the gateway, defined here and nowhere else.

Nothing on the order path touches prometheus_client: the hot path and the engine keep plain counters
(C integers in ``_fast`` and ``_engine``), and `GatewayCollector` reads them at scrape time. Labels come from bounded sets only: sessions and venues from the configuration, reasons from
the reject table, risk states from the enum. Tests build a fresh `CollectorRegistry` per gateway.
"""

from __future__ import annotations

from typing import Any, Iterator

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    StateSetMetricFamily,
)
from prometheus_client.registry import Collector

from bisect import bisect_left

from fixgate._engine.engine import stage_bucket_bounds
from fixgate._fast.codes import RejectCode, RiskState
from fixgate.core.events import ALARM_NAMES, VENUE_READY
from fixgate.core.latency import LatencyHistogram

NANOSECOND = 1e-9

# name -> (type, help): the catalogue that alert rules and dashboards may use.
METRICS = {
    "fixgate_build": ("info", "Version, git commit and configuration digest of the running gateway."),
    "fixgate_uptime_seconds": ("gauge", "Seconds since the gateway started."),
    "fixgate_orders_received_total": ("counter", "NewOrderSingle messages received, since the process started."),
    "fixgate_orders_accepted_total": ("counter", "Orders accepted and routed to a venue, since the process started."),
    "fixgate_orders_rejected_total": ("counter", "Orders and replaces rejected, by reason, since the process started."),
    "fixgate_fills_total": ("counter", "Fills reported by venues, since the process started."),
    "fixgate_cancels_total": ("counter", "Cancels sent to venues, since the process started."),
    "fixgate_replaces_total": ("counter", "Replaces sent to venues, since the process started."),
    "fixgate_orders_today": ("gauge", "Today's order events by kind (from the journal: a restart keeps them)."),
    "fixgate_orders_rejected_today": ("gauge", "Today's orders rejected, by reason (from the journal)."),
    "fixgate_pretrade_checks_total": ("counter", "Pre-trade check chains run by the hot path."),
    "fixgate_throttle_breaches_total": ("counter", "Orders refused by a rate limit, by scope."),
    "fixgate_check_latency_seconds": ("histogram", "Time of the hot path's check chain for one order."),
    "fixgate_internal_latency_seconds": ("histogram",
                                         "Client message received to venue message handed to QuickFIX."),
    "fixgate_ring_occupancy_events": ("gauge", "Events waiting in the rings to the state thread."),
    "fixgate_ring_full_total": ("counter", "Events refused because a ring was full."),
    "fixgate_session_logged_on": ("gauge", "1 when the FIX session is logged on, by session and side."),
    "fixgate_quote_rejections_total": ("counter", "Quotes and trades refused by validation, by reason."),
    "fixgate_quote_stale": ("gauge", "1 when the instrument has no valid quote within its stale_after."),
    "fixgate_position_quantity": ("gauge", "Net position by account and symbol."),
    "fixgate_gross_exposure": ("gauge", "Sum of |position x mark|, account currency."),
    "fixgate_net_exposure": ("gauge", "Sum of position x mark, account currency."),
    "fixgate_pnl_realized": ("gauge", "Realized P&L, account currency."),
    "fixgate_pnl_unrealized": ("gauge", "Unrealized P&L at the latest valid mids, account currency."),
    "fixgate_equity": ("gauge", "Starting equity plus P&L."),
    "fixgate_drawdown_ratio": ("gauge", "(Peak equity of the day - equity) / peak equity."),
    "fixgate_risk_state": ("stateset", "The graduated risk state."),
    "fixgate_risk_state_transitions_total": ("counter", "Risk state changes, by target state."),
    "fixgate_open_orders": ("gauge", "Orders live in the risk book."),
    "fixgate_illegal_transitions_total": ("counter", "Order events refused by the OMS state machine."),
    "fixgate_callback_errors_total": ("counter", "Exceptions caught in QuickFIX callbacks."),
    "fixgate_duplicate_fills_total": ("counter", "Venue fills received again and not booked twice."),
    "fixgate_late_venue_reports_total": ("counter", "Venue terminal reports for orders already finished (ignored)."),
    "fixgate_reconciliation_differences_total": ("counter", "Differences with a venue found by reconciliation."),
    "fixgate_alarms_total": ("counter", "Alarms raised by the engine and the state thread, by alarm."),
    "fixgate_venue_ready": ("gauge", "1 when the venue is logged on and reconciled."),
    "fixgate_outbound_queued_bytes": ("gauge", "Bytes waiting for a peer beyond what its socket holds."),
    "fixgate_slow_consumers_total": ("counter", "Peers disconnected because they stopped reading."),
    "fixgate_engine_stalled": ("gauge", "1 when a thread of the gateway has stopped making progress."),
    "fixgate_trading_day_start_seconds": ("gauge", "Start of the current trading day (Unix time); it moves at "
                                                   "risk.trading_day_start_utc."),
    "fixgate_draining": ("gauge", "1 from the start of a drain: no new orders, the venues logged out when done."),
    "fixgate_trace_spans_total": ("counter", "Order spans exported to the trace collector, by result."),
    "fixgate_client_killed": ("gauge", "1 while a client session's own kill switch is on."),
    "fixgate_quote_source": ("gauge", "1 for the venue whose quotes an instrument's quote book takes now (its "
                                      "own, or a backup's while the primary's are stale)."),
    "fixgate_quote_source_switches_total": ("counter", "Changes of quote source, to a backup and back."),
    "fixgate_reduce_only": ("gauge", "1 while the gateway takes only position-reducing orders, by reason (the firm "
                                     "link's lease, a build not confirmed)."),
    "fixgate_firm_connected": ("gauge", "1 while the firm link is connected to NATS ([firm] configured)."),
    "fixgate_firm_backlog_events": ("gauge", "Journal events not yet acknowledged by the firm's stream."),
    "fixgate_firm_backlog_age_seconds": ("gauge", "How long the oldest entry not yet on the firm's stream has waited."),
    "fixgate_firm_published_events_total": ("counter", "Events the firm's stream acknowledged (orders records)."),
    "fixgate_firm_published_messages_total": ("counter", "Messages the firm's stream acknowledged, by subject kind "
                                                         "(duplicates: re-publishes it dropped)."),
    "fixgate_firm_budget": ("gauge", "This gateway's budget of a firm-wide limit, by limit (gross_exposure, "
                                     "daily_notional, daily_orders, credit.<client>): what its book lets it use."),
    "fixgate_firm_budget_usage": ("gauge", "What this gateway uses of its budget of a firm-wide limit, by limit."),
    "fixgate_firm_limit": ("gauge", "A firm-wide limit as the firm's ledger holds it, by limit."),
    "fixgate_firm_allocated": ("gauge", "The firm-wide limit's allocations to every gateway together, by limit."),
    "fixgate_firm_budget_moves_total": ("counter", "Units of firm budgets this gateway took from the firm or gave "
                                                   "back to it, by direction."),
    "fixgate_firm_rebalance_seconds": ("gauge", "How long this gateway waited, from asking for budget in vain to a "
                                                "grant, by quantile (0.5, 0.99) over its last 1000 rebalances."),
    "fixgate_firm_publish_failures_total": ("counter", "Publishes to the firm's stream that failed (tried again)."),
    "fixgate_client_daily_notional": ("gauge", "A client session's notional so far today, against its own cap."),
    "fixgate_client_open_notional": ("gauge", "The notional of a client session's open orders."),
    "fixgate_restricted_symbols": ("gauge", "Symbols on the restricted list, for everyone ('*') or one client."),
}


# The reasons an order is refused for (quote and trade codes have their own metric).
ORDER_REJECT_CODES = [code for code in RejectCode
                      if code != RejectCode.OK and not code.name.startswith(("QUOTE_", "TRADE_"))]

# Upper bounds of the check-latency histogram, from 100 ns.
CHECK_BOUNDS_NS = (100, 200, 300, 500, 750, 1_000, 2_000, 5_000, 10_000, 50_000, 100_000, 1_000_000)


def _stage_histogram(name: str, buckets: list[int]) -> HistogramMetricFamily:
    """Export one of the engine's log-linear stage histograms with the catalogue's bucket bounds."""
    cumulative = []
    counts = [0] * (len(CHECK_BOUNDS_NS) + 1)
    total_ns = 0.0
    for bucket, count in enumerate(buckets):
        if not count:
            continue
        low, high = stage_bucket_bounds(bucket)
        total_ns += count * (low + high) / 2
        counts[bisect_left(CHECK_BOUNDS_NS, high - 1)] += count
    running = 0
    for bound, count in zip(list(CHECK_BOUNDS_NS) + [None], counts):
        running += count
        cumulative.append(("+Inf" if bound is None else bucket_label(bound), running))
    return HistogramMetricFamily(name, METRICS[name][1], buckets=cumulative, sum_value=total_ns * NANOSECOND)


def bucket_label(bound_ns: int) -> str:
    """The `le` label of a bound in seconds, without float noise: 100 ns is "1e-07", 1 ms "0.001".

    Dividing the whole number of nanoseconds by 1e9 rounds once, to the float nearest the decimal
    value, whose shortest repr is that decimal (multiplying by 1e-9 rounds twice).
    """
    return repr(bound_ns / 1e9)


def _histogram(name: str, histogram: LatencyHistogram) -> HistogramMetricFamily:
    buckets, _, total_ns = histogram.snapshot()
    cumulative = []
    running = 0
    for bound, count in zip(list(histogram.bounds_ns) + [None], buckets):
        running += count
        cumulative.append(("+Inf" if bound is None else bucket_label(bound), running))
    return HistogramMetricFamily(name, METRICS[name][1], buckets=cumulative, sum_value=total_ns * NANOSECOND)


FIRM_ABSENT = {"connected": False, "backlog": {"events": 0, "oldest_age_s": 0.0},
               "published": {"events": 0, "batches": 0, "notes": 0, "duplicates": 0}, "publish_failures": 0}


def _budget_families(budgets: dict[str, Any] | None):
    """The firm budgets' families (empty without firm limits)."""
    families = {name: GaugeMetricFamily(name, METRICS[name][1], labels=["limit"]) for name in (
        "fixgate_firm_budget", "fixgate_firm_budget_usage", "fixgate_firm_limit", "fixgate_firm_allocated")}
    moves = CounterMetricFamily("fixgate_firm_budget_moves_total", METRICS["fixgate_firm_budget_moves_total"][1],
                                labels=["direction"])
    rebalance = GaugeMetricFamily("fixgate_firm_rebalance_seconds", METRICS["fixgate_firm_rebalance_seconds"][1],
                                  labels=["quantile"])
    if budgets is not None:
        for limit, meter in budgets["meters"].items():
            for name, value in (("fixgate_firm_budget", meter["budget"]), ("fixgate_firm_budget_usage", meter["usage"]),
                                ("fixgate_firm_limit", meter["firm_limit"]),
                                ("fixgate_firm_allocated", meter["firm_allocated"])):
                if value is not None:
                    families[name].add_metric([limit], float(value))
        for quantile, key in (("0.5", "p50"), ("0.99", "p99")):
            if budgets["rebalance_ms"][key] is not None:
                rebalance.add_metric([quantile], budgets["rebalance_ms"][key] / 1000)
    moves.add_metric(["taken"], budgets["taken"] if budgets is not None else 0)
    moves.add_metric(["given_back"], budgets["given_back"] if budgets is not None else 0)
    yield from families.values()
    yield moves
    yield rebalance


class GatewayCollector(Collector):
    """Read the gateway's own counters and state at scrape time."""

    def __init__(self, gateway: Any) -> None:
        self.gateway = gateway

    def collect(self) -> Iterator:
        gateway = self.gateway
        book = gateway.book
        engine = gateway.engine
        counters = engine.counters()
        yield InfoMetricFamily("fixgate_build", METRICS["fixgate_build"][1], value=gateway.build_info())
        yield GaugeMetricFamily("fixgate_uptime_seconds", METRICS["fixgate_uptime_seconds"][1],
                                value=gateway.uptime_seconds())
        yield CounterMetricFamily("fixgate_orders_received_total", METRICS["fixgate_orders_received_total"][1],
                                  value=counters["received"])
        yield CounterMetricFamily("fixgate_orders_accepted_total", METRICS["fixgate_orders_accepted_total"][1],
                                  value=counters["accepted"])
        rejected = CounterMetricFamily("fixgate_orders_rejected_total", METRICS["fixgate_orders_rejected_total"][1],
                                       labels=["reason"])
        by_code = counters["rejected_by_code"]
        for code in ORDER_REJECT_CODES:
            rejected.add_metric([code.name], by_code.get(int(code), 0))
        yield rejected
        today = gateway.today()
        daily = GaugeMetricFamily("fixgate_orders_today", METRICS["fixgate_orders_today"][1], labels=["kind"])
        for kind in ("accepted", "rejected", "fills", "cancels", "replaces", "canceled", "venue_rejected"):
            daily.add_metric([kind], today[kind])
        yield daily
        daily_rejects = GaugeMetricFamily("fixgate_orders_rejected_today", METRICS["fixgate_orders_rejected_today"][1],
                                          labels=["reason"])
        for code in ORDER_REJECT_CODES:
            daily_rejects.add_metric([code.name], today["rejected_by_reason"].get(code.name, 0))
        yield daily_rejects
        ring = engine.ring()
        for name, value in (("fixgate_fills_total", counters["fills"]), ("fixgate_cancels_total", counters["cancels"]),
                            ("fixgate_replaces_total", counters["replaces"]),
                            ("fixgate_pretrade_checks_total", book.checks),
                            ("fixgate_ring_full_total", ring["overflow_total"]),
                            ("fixgate_illegal_transitions_total", gateway.order_state.illegal_transitions),
                            ("fixgate_callback_errors_total", counters["callback_errors"]),
                            ("fixgate_duplicate_fills_total", counters["duplicate_fills"]),
                            ("fixgate_late_venue_reports_total", counters["late_venue_reports"]),
                            ("fixgate_reconciliation_differences_total", counters["reconciled"])):
            yield CounterMetricFamily(name, METRICS[name][1], value=value)
        alarms = CounterMetricFamily("fixgate_alarms_total", METRICS["fixgate_alarms_total"][1], labels=["alarm"])
        for name in ALARM_NAMES.values():
            alarms.add_metric([name], gateway.alarm_counts.get(name, 0))
        yield alarms
        venue_ready = GaugeMetricFamily("fixgate_venue_ready", METRICS["fixgate_venue_ready"][1], labels=["venue"])
        for index, name in enumerate(gateway.venue_names):
            venue_ready.add_metric([name], 1 if engine.venue_state(index) == VENUE_READY else 0)
        yield venue_ready
        outbound = GaugeMetricFamily("fixgate_outbound_queued_bytes", METRICS["fixgate_outbound_queued_bytes"][1],
                                     labels=["session", "side"])
        slow = CounterMetricFamily("fixgate_slow_consumers_total", METRICS["fixgate_slow_consumers_total"][1],
                                   labels=["session", "side"])
        for index, name in enumerate(gateway.session_names):
            outbound.add_metric([name, "client"], engine.outbox_queued_bytes(False, index))
            slow.add_metric([name, "client"], engine.outbox_slow_count(False, index))
        for index, name in enumerate(gateway.venue_names):
            outbound.add_metric([name, "venue"], engine.outbox_queued_bytes(True, index))
            slow.add_metric([name, "venue"], engine.outbox_slow_count(True, index))
        yield outbound
        yield slow
        yield GaugeMetricFamily("fixgate_trading_day_start_seconds", METRICS["fixgate_trading_day_start_seconds"][1],
                                value=gateway.risk_agent.day_start_ns / 1e9)
        yield GaugeMetricFamily("fixgate_draining", METRICS["fixgate_draining"][1],
                                value=0 if gateway.risk_agent.drain is None else 1)
        families = {name: GaugeMetricFamily(name, METRICS[name][1], labels=["client"])
                    for name in ("fixgate_client_killed", "fixgate_client_daily_notional",
                                 "fixgate_client_open_notional")}
        for index, name in enumerate(gateway.session_names):
            client = book.client(index)
            families["fixgate_client_killed"].add_metric([name], 1 if client["killed"] else 0)
            families["fixgate_client_daily_notional"].add_metric([name], client["daily_notional"])
            families["fixgate_client_open_notional"].add_metric([name], client["open_notional"])
        yield from families.values()
        sources = GaugeMetricFamily("fixgate_quote_source", METRICS["fixgate_quote_source"][1],
                                    labels=["symbol", "venue"])
        for symbol, venue in gateway.quote_sources.sources.items():
            sources.add_metric([symbol, venue], 1)
        yield sources
        yield CounterMetricFamily("fixgate_quote_source_switches_total",
                                  METRICS["fixgate_quote_source_switches_total"][1],
                                  value=gateway.quote_sources.switches)
        reduce_only = GaugeMetricFamily("fixgate_reduce_only", METRICS["fixgate_reduce_only"][1], labels=["reason"])
        for key in ("lease", "build"):
            reduce_only.add_metric([key], 1 if key in gateway.reduce_only_reasons else 0)
        yield reduce_only
        # Without a firm, the link's families say so with zeros (no link, nothing waiting).
        firm = gateway.firm.describe() if gateway.firm is not None else FIRM_ABSENT
        yield GaugeMetricFamily("fixgate_firm_connected", METRICS["fixgate_firm_connected"][1],
                                value=1 if firm["connected"] else 0)
        yield GaugeMetricFamily("fixgate_firm_backlog_events", METRICS["fixgate_firm_backlog_events"][1],
                                value=firm["backlog"]["events"])
        yield GaugeMetricFamily("fixgate_firm_backlog_age_seconds", METRICS["fixgate_firm_backlog_age_seconds"][1],
                                value=firm["backlog"]["oldest_age_s"])
        yield CounterMetricFamily("fixgate_firm_published_events_total",
                                  METRICS["fixgate_firm_published_events_total"][1],
                                  value=firm["published"]["events"])
        messages = CounterMetricFamily("fixgate_firm_published_messages_total",
                                       METRICS["fixgate_firm_published_messages_total"][1], labels=["kind"])
        for kind in ("batches", "notes", "duplicates"):
            messages.add_metric([kind], firm["published"][kind])
        yield messages
        yield CounterMetricFamily("fixgate_firm_publish_failures_total",
                                  METRICS["fixgate_firm_publish_failures_total"][1],
                                  value=firm["publish_failures"])
        yield from _budget_families(gateway.budgets.describe() if gateway.budgets is not None else None)
        restricted = GaugeMetricFamily("fixgate_restricted_symbols", METRICS["fixgate_restricted_symbols"][1],
                                       labels=["client"])
        for scope, symbols in gateway.controls.restricted_list().items():
            restricted.add_metric([scope], len(symbols))
        yield restricted
        tracing = gateway.tracer.counters() if gateway.tracer is not None else {"exported": 0, "failed": 0}
        spans = CounterMetricFamily("fixgate_trace_spans_total", METRICS["fixgate_trace_spans_total"][1],
                                    labels=["result"])
        spans.add_metric(["exported"], tracing["exported"])
        spans.add_metric(["failed"], tracing["failed"])
        yield spans
        yield GaugeMetricFamily("fixgate_engine_stalled", METRICS["fixgate_engine_stalled"][1],
                                value=0 if gateway.watchdog()["ok"] else 1)
        throttle = book.throttle.counters()
        breaches = CounterMetricFamily("fixgate_throttle_breaches_total",
                                       METRICS["fixgate_throttle_breaches_total"][1], labels=["scope"])
        for scope in ("global", "session", "instrument", "venue"):
            breaches.add_metric([scope], throttle[f"{scope}_breaches"])
        yield breaches
        yield _stage_histogram("fixgate_check_latency_seconds", engine.stages()["checks"])
        yield _histogram("fixgate_internal_latency_seconds", gateway.order_state.internal_latency)
        yield GaugeMetricFamily("fixgate_ring_occupancy_events", METRICS["fixgate_ring_occupancy_events"][1],
                                value=ring["occupancy"] + ring["overflow"])
        yield GaugeMetricFamily("fixgate_open_orders", METRICS["fixgate_open_orders"][1], value=book.live_orders)
        logged_on = GaugeMetricFamily("fixgate_session_logged_on", METRICS["fixgate_session_logged_on"][1],
                                      labels=["session", "side"])
        for index, name in enumerate(gateway.session_names):
            logged_on.add_metric([name, "client"], 1 if engine.client_logged_on(index) else 0)
        for index, name in enumerate(gateway.venue_names):
            logged_on.add_metric([name, "venue"], 1 if engine.venue_logged_on(index) else 0)
        yield logged_on
        quotes = book.quotes.counters()["invalid"]
        rejections = CounterMetricFamily("fixgate_quote_rejections_total",
                                         METRICS["fixgate_quote_rejections_total"][1], labels=["reason"])
        for code in RejectCode:
            if code.name.startswith(("QUOTE_", "TRADE_")):
                rejections.add_metric([code.name], quotes.get(int(code), 0))
        yield rejections
        stale = GaugeMetricFamily("fixgate_quote_stale", METRICS["fixgate_quote_stale"][1], labels=["symbol"])
        now_ns = gateway.clock()
        for instrument_id, symbol in enumerate(book.instruments.symbols):
            stale.add_metric([symbol], 1 if book.quotes.is_stale(instrument_id, now_ns) else 0)
        yield stale
        figures = gateway.positions_snapshot()
        position = GaugeMetricFamily("fixgate_position_quantity", METRICS["fixgate_position_quantity"][1],
                                     labels=["account", "symbol"])
        quantities = {(name, symbol): 0.0 for name in gateway.session_names for symbol in book.instruments.symbols}
        for row in figures.get("positions", []):
            quantities[(row["account"], row["symbol"])] = float(row["quantity"])
        for (account, symbol), quantity in sorted(quantities.items()):
            position.add_metric([account, symbol], quantity)
        yield position
        for name, key in (("fixgate_gross_exposure", "gross_exposure"), ("fixgate_net_exposure", "net_exposure"),
                          ("fixgate_pnl_realized", "realized_pnl"), ("fixgate_pnl_unrealized", "unrealized_pnl"),
                          ("fixgate_equity", "equity"), ("fixgate_drawdown_ratio", "drawdown")):
            yield GaugeMetricFamily(name, METRICS[name][1], value=float(figures.get(key, 0)))
        state = RiskState(book.risk_state)
        yield StateSetMetricFamily("fixgate_risk_state", METRICS["fixgate_risk_state"][1],
                                   value={member.name: member == state for member in RiskState})
        transitions = CounterMetricFamily("fixgate_risk_state_transitions_total",
                                          METRICS["fixgate_risk_state_transitions_total"][1], labels=["to"])
        for member in RiskState:
            transitions.add_metric([member.name], gateway.transition_counts.get(member.name, 0))
        yield transitions


def build_registry(gateway: Any) -> CollectorRegistry:
    """Return a fresh registry holding the gateway's collector and the process's (CPU, memory, open
    files: ``process_*``), the interpreter's (``python_info``) and the garbage collector's."""
    registry = CollectorRegistry()
    registry.register(GatewayCollector(gateway))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def exposition(registry: CollectorRegistry, accept: str = "") -> tuple[bytes, str]:
    """Return the exposition of `registry` and its content type: OpenMetrics when the scraper's
    Accept header asks for it (as Prometheus does), the Prometheus text format otherwise."""
    if "application/openmetrics-text" in accept:
        return openmetrics.generate_latest(registry), openmetrics.CONTENT_TYPE_LATEST
    return generate_latest(registry), TEXT_CONTENT_TYPE

