"""Traces over OTLP/HTTP: sampled orders reach a collector as spans from the gateway's own clocks."""

import dataclasses
import http.server
import threading
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from fixgate.core.messages import ExecType

from .conftest import Stack, free_port, stack_config

BUY = "1"


class Collector:
    """An OTLP/HTTP trace receiver: decodes each export request with the OTLP protobuf schema."""

    def __init__(self) -> None:
        self.spans: list[tuple[dict, object]] = []       # (resource attributes, span)
        self.requests = 0
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource_spans in request.resource_spans:
                    resource = {item.key: item.value.string_value for item in resource_spans.resource.attributes}
                    for scope_spans in resource_spans.scope_spans:
                        collector.spans.extend((resource, span) for span in scope_spans.spans)
                collector.requests += 1
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format, *args):  # noqa: A002
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def traced_stack(tmp_path, endpoint):
    base = stack_config()
    config = dataclasses.replace(base, tracing=dataclasses.replace(base.tracing, endpoint=endpoint, sample_ratio=1.0,
                                                                   export_interval_ms=50))
    return Stack(config, tmp_path).start()


def attributes(span) -> dict:
    return {item.key: (item.value.string_value or item.value.int_value) for item in span.attributes}


def test_traces_when_orders_pass_reach_the_collector_as_an_order_span_with_its_stages(tmp_path):
    collector = Collector()
    stack = traced_stack(tmp_path, f"http://127.0.0.1:{collector.port}/v1/traces")
    try:
        client = stack.client()
        sent = [client.new_order("AAPL", BUY, "1", f"189.0{index}") for index in range(3)]
        for cl_ord_id in sent:
            assert client.wait_report(cl_ord_id, exec_type=ExecType.NEW)
        refused = client.new_order("NOPE", BUY, "1", "1.00")
        assert client.wait_report(refused, exec_type=ExecType.REJECTED)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(collector.spans) < 3 * 4 + 1:
            time.sleep(0.05)
    finally:
        stack.stop()
        collector.stop()
    roots = {attributes(span)["fix.cl_ord_id"]: span for _, span in collector.spans if span.name == "order"}
    assert sorted(roots) == sorted(sent)
    for cl_ord_id, root in roots.items():
        children = sorted((span for _, span in collector.spans if span.parent_span_id == root.span_id),
                          key=lambda span: span.start_time_unix_nano)
        assert [span.name for span in children] == ["gateway: decode, check, write ahead, send", "venue",
                                                    "gateway: report"], cl_ord_id
        assert all(span.trace_id == root.trace_id for span in children)
        assert root.start_time_unix_nano == children[0].start_time_unix_nano
        assert root.end_time_unix_nano == children[-1].end_time_unix_nano
        for before, after in zip(children, children[1:]):
            assert before.end_time_unix_nano == after.start_time_unix_nano      # stage after stage, no gap
        assert attributes(root)["fixgate.symbol"] == "AAPL" and attributes(root)["fixgate.session"] == "client1"
        assert attributes(root)["fixgate.answer"] == "acked"
        assert 0 < root.end_time_unix_nano - root.start_time_unix_nano < 5_000_000_000
    refusals = [span for _, span in collector.spans if span.name == "order refused"]
    assert len(refusals) == 1 and attributes(refusals[0])["fixgate.reason"] == "UNKNOWN_INSTRUMENT"
    resource = collector.spans[0][0]
    assert resource["service.name"] == "fixgate" and resource["service.instance.id"] == stack.config.gateway.name


def test_traces_when_the_collector_is_down_cost_a_counted_failure_and_nothing_else(tmp_path):
    stack = traced_stack(tmp_path, f"http://127.0.0.1:{free_port()}/v1/traces")
    try:
        client = stack.client()
        for index in range(3):
            cl_ord_id = client.new_order("AAPL", BUY, "1", f"189.0{index}")
            assert client.wait_report(cl_ord_id, exec_type=ExecType.NEW)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and stack.gateway.tracer.counters()["failed"] < 12:
            time.sleep(0.05)
        counters = stack.gateway.status()["tracing"]                 # 3 orders: a root and 3 stages each
        assert counters["traced"] == 3 and counters["failed"] == 12 and counters["exported"] == 0, counters
        assert 'fixgate_trace_spans_total{result="failed"} 12.0' in stack.gateway.metrics_text().decode()
        again = client.new_order("AAPL", BUY, "1", "188.00")                  # still trading
        assert client.wait_report(again, exec_type=ExecType.NEW)
    finally:
        stack.stop()
