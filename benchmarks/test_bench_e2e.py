"""End to end on 127.0.0.1: (a) client -> simulator, (b) through the gateway, (c) raw TCP; throughput and
sustained rates. One run per session (it starts its own processes); figures go to extra_info and to
bench-results/pytest/results.json."""

from pathlib import Path

from fixgate.bench import e2e


def test_end_to_end(benchmark, quick):
    benchmark.group = "end to end: order to first report, one outstanding"
    output = Path("bench-results") / ("pytest-quick" if quick else "pytest")
    results = benchmark.pedantic(e2e.run, args=(output,), kwargs={"quick": quick}, rounds=1, iterations=1)
    latency = results["latency"]
    for key in ("a_direct", "b_gateway", "c_tcp"):
        assert latency[key]["count"] > 0
        benchmark.extra_info[f"{key}_p50_us"] = round(latency[key]["p50_us"], 1)
        benchmark.extra_info[f"{key}_p99_us"] = round(latency[key]["p99_us"], 1)
    benchmark.extra_info["gateway_added_p50_us"] = round(results["gateway_added_us"]["p50_us"], 1)
    benchmark.extra_info["added_p50_over_tcp"] = round(results["ratios_to_tcp"]["added_p50"], 1)
    assert results["throughput"]["b_gateway"]["lost"] == 0
    assert results["sustained"] and results["sustained"][0]["lost"] == 0
    assert (output / "results.json").exists() and (output / "latency.png").exists()
