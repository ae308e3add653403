"""``relay bench push --quick`` runs end to end and writes a sane report (no timing
assertions: speed is judged from full runs, never by tests)."""

from __future__ import annotations

from pathlib import Path

from tests.bench.reports import run_quick


def test_the_quick_push_benchmark_writes_a_report(tmp_path: Path) -> None:
    report = run_quick("push", tmp_path)
    assert report["parameters"]["count"] == 200
    assert {s["client"] for s in report["samples"]} == {"pool", "httpx", "aioapns"}
    for sample in report["samples"]:
        assert sample["pushes"] == 200
        assert sample["rate"] > 0
        assert sample["cpu_us_per_push"] > 0
    results = report["results"]
    for client in ("pool", "httpx", "aioapns"):
        summary = results[client]["pushes_per_s"]
        assert 0 < summary["min"] <= summary["median"] <= summary["max"]
    assert results["pool_vs_httpx"]["pushes_per_s"]["median"] > 0
    assert results["pool_vs_aioapns"]["cpu_per_push"]["median"] > 0
