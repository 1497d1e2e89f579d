"""Traces: a sampled share of orders as OpenTelemetry spans, exported over OTLP/HTTP.

Nothing here runs on the order path. The state thread hands every order event to `OrderTracer.observe`;
for a sampled order it keeps the accepted event until the venue's acknowledgement (or refusal)
arrives, then builds the spans from the engine's own clocks, in the past:

    order                      client message in -> acknowledgement handed to QuickFIX for the client
      gateway: decode, check, write ahead, send   client message in -> order handed to QuickFIX for the venue
      venue                    order out -> the venue's acknowledgement in
      gateway: report          acknowledgement in -> report out to the client

An order the gateway refuses is one span ("order refused", with the reason). The OpenTelemetry SDK's
batch processor exports on its own thread; a collector that is down costs a counted failure and
nothing else.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Sequence

import structlog
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

from fixgate._fast.codes import reject_name
from fixgate.core import events as ev
from fixgate.core.events import Event

log = structlog.get_logger("fixgate.tracing")

MAX_PENDING = 10_000          # sampled orders waiting for the venue's answer
_GOLDEN = 0x9E3779B97F4A7C15  # Fibonacci hashing: spreads consecutive ids over the 64-bit range


def sampled(number: int, threshold: int) -> bool:
    """Whether an order (by id, or a refusal by sequence) is in the sample: its hash below `threshold`."""
    return (number * _GOLDEN) & 0xFFFFFFFFFFFFFFFF < threshold


class CountingExporter(OTLPSpanExporter):
    """The OTLP/HTTP exporter, counting what it exported and what it could not."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.exported = 0
        self.failed = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = super().export(spans)
        except Exception:                     # the SDK's thread must live on whatever the collector does
            result = SpanExportResult.FAILURE
        if result == SpanExportResult.SUCCESS:
            self.exported += len(spans)
        else:
            if not self.failed:
                log.warning("trace_export_failed", spans=len(spans))
            self.failed += len(spans)
        return result


class OrderTracer:
    """Build spans for one order in `every` (by order id) and export them.

    Parameters
    ----------
    endpoint : str
        The collector's OTLP/HTTP traces URL, e.g. ``http://127.0.0.1:4318/v1/traces``.
    sample_ratio : float
        The share of orders traced (1.0: all).
    service_name, instance : str
        The resource's ``service.name`` and ``service.instance.id`` (the gateway's name).
    sessions, venues, symbols : list[str]
        Names by index, for the spans' attributes.
    export_interval_ms : int
        How often the batch processor exports.
    max_per_second : int
        At most this many orders traced a second, whatever the ratio (the spans are built on the
        state thread); the rest are counted as skipped.
    """

    def __init__(self, endpoint: str, sample_ratio: float, *, service_name: str, instance: str, sessions: list[str],
                 venues: list[str], symbols: list[str], export_interval_ms: int = 1000,
                 max_per_second: int = 200) -> None:
        self.threshold = min(int(sample_ratio * 2**64), 2**64)
        self.max_per_second = max_per_second
        self.second = 0
        self.this_second = 0
        self.skipped = 0
        self.sessions, self.venues, self.symbols = sessions, venues, symbols
        self.exporter = CountingExporter(endpoint=endpoint, timeout=5)
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name,
                                                                 "service.instance.id": instance}))
        self.provider.add_span_processor(BatchSpanProcessor(self.exporter, max_queue_size=4096,
                                                            schedule_delay_millis=export_interval_ms))
        self.tracer = self.provider.get_tracer("fixgate")
        self.pending: OrderedDict[int, Event] = OrderedDict()
        self.traced = 0
        self.dropped = 0

    def observe(self, event: Event) -> None:
        """Take one order event (state thread)."""
        kind = event.kind
        if kind == ev.ACCEPTED:
            if sampled(event.order_id, self.threshold) and self._allowed(event.recv_ns):
                self.pending[event.order_id] = event
                if len(self.pending) > MAX_PENDING:
                    self.pending.popitem(last=False)
                    self.dropped += 1
        elif kind in (ev.ACKED, ev.VENUE_REJECTED, ev.FILLED, ev.CANCELED, ev.EXPIRED):
            accepted = self.pending.pop(event.order_id, None) if self.pending else None
            if accepted is not None:
                self._order(accepted, event)
        elif kind == ev.REJECTED and sampled(event.seq, self.threshold) and self._allowed(event.recv_ns):
            self._refused(event)

    def _allowed(self, now_ns: int) -> bool:
        second = now_ns // 1_000_000_000
        if second != self.second:
            self.second, self.this_second = second, 0
        if self.this_second >= self.max_per_second:
            self.skipped += 1
            return False
        self.this_second += 1
        return True

    def _attributes(self, event: Event) -> dict[str, Any]:
        attributes: dict[str, Any] = {"fix.cl_ord_id": ev.text(event.text_a), "fixgate.order_id": event.order_id}
        if 0 <= event.session_id < len(self.sessions):
            attributes["fixgate.session"] = self.sessions[event.session_id]
        if 0 <= event.instrument_id < len(self.symbols):
            attributes["fixgate.symbol"] = self.symbols[event.instrument_id]
        if 0 <= event.venue_id < len(self.venues):
            attributes["fixgate.venue"] = self.venues[event.venue_id]
        attributes["fixgate.side"] = {1: "buy", 2: "sell", 5: "sell short"}.get(event.side, str(event.side))
        attributes["fixgate.qty_lots"] = event.qty_lots
        return attributes

    def _order(self, accepted: Event, answer: Event) -> None:
        client_in = accepted.recv_ns
        venue_out = accepted.sent_ns or client_in
        answer_in = max(answer.recv_ns, venue_out)
        client_out = max(answer.sent_ns or answer_in, answer_in)
        root = self.tracer.start_span("order", kind=SpanKind.SERVER, start_time=client_in,
                                      attributes={**self._attributes(accepted),
                                                  "fixgate.answer": ev.KIND_NAMES.get(answer.kind, str(answer.kind))})
        context = set_span_in_context(root)
        for name, start, end, kind in (("gateway: decode, check, write ahead, send", client_in, venue_out,
                                        SpanKind.INTERNAL),
                                       ("venue", venue_out, answer_in, SpanKind.CLIENT),
                                       ("gateway: report", answer_in, client_out, SpanKind.INTERNAL)):
            child = self.tracer.start_span(name, context=context, kind=kind, start_time=start)
            child.end(end_time=end)
        if answer.kind == ev.VENUE_REJECTED:
            root.set_status(Status(StatusCode.ERROR, ev.text(answer.text_a) or "rejected by the venue"))
        root.end(end_time=client_out)
        self.traced += 1

    def _refused(self, event: Event) -> None:
        span = self.tracer.start_span("order refused", kind=SpanKind.SERVER, start_time=event.recv_ns,
                                      attributes={**self._attributes(event), "fixgate.reason": reject_name(event.code)})
        span.set_status(Status(StatusCode.ERROR, reject_name(event.code)))
        span.end(end_time=max(event.sent_ns, event.recv_ns))
        self.traced += 1

    def counters(self) -> dict[str, int]:
        return {"traced": self.traced, "exported": self.exporter.exported, "failed": self.exporter.failed,
                "dropped": self.dropped, "skipped": self.skipped, "pending": len(self.pending)}

    def close(self) -> None:
        """Export what is left (a few seconds at most) and stop the export thread."""
        self.provider.force_flush(timeout_millis=3000)
        self.provider.shutdown()
