"""End to end on 127.0.0.1 with native peers: (c) raw TCP, (a) client -> venue, (b) through the gateway,
pinned to one core and not; throughput, a sustained rate, and the Python peers. One run per session (it
starts its own processes); figures go to extra_info and to bench-results/pytest/results.json."""

from pathlib import Path

from fixgate.bench import e2e


def test_end_to_end(benchmark, quick):
    benchmark.group = "end to end: order to first report, one outstanding"
    output = Path("bench-results") / ("pytest-quick" if quick else "pytest")
    results = benchmark.pedantic(e2e.run, args=(output,), kwargs={"quick": quick}, rounds=1, iterations=1)
    for pinning in ("pinned", "unpinned"):
        latency = results[f"latency_{pinning}"]
        for key in ("a_direct", "b_gateway", "c_tcp_c", "c_tcp_python"):
            assert latency[key]["count"] > 0
            benchmark.extra_info[f"{pinning}_{key}_p50_us"] = round(latency[key]["p50_us"], 1)
        assert latency["lost"] == 0 and latency["rejects"] == 0
        benchmark.extra_info[f"{pinning}_added_p50_us"] = round(latency["added"]["p50_us"], 1)
        benchmark.extra_info[f"{pinning}_added_p99_us"] = round(latency["added"]["p99_us"], 1)
    assert all(row["lost"] == 0 and row["rejects"] == 0 for row in results["throughput"].values())
    assert results["sustained"] and results["sustained"][0]["lost"] == 0
    assert (output / "results.json").exists() and (output / "latency.png").exists()
