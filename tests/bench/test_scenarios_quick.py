"""Every scenario's ``--quick`` mode runs end to end as a user runs it (``relay bench``,
real server and emulator processes) and writes a sane report with its plot. No timing
assertions: speed is judged from full runs, never by tests."""

from __future__ import annotations

from pathlib import Path

from tests.bench.reports import run_quick


def _positive(summary: dict[str, float]) -> None:
    assert 0 < summary["min"] <= summary["median"] <= summary["max"]


def test_relay_live(tmp_path: Path) -> None:
    report = run_quick("relay-live", tmp_path)
    assert set(report["results"]) == {"1 per POST", "50 per POST"}
    for variant in report["results"].values():
        for metric in ("messages_per_s", "latency_p50_ms", "latency_p99_ms"):
            _positive(variant[metric])
        assert variant["latency_p50_ms"]["median"] <= variant["latency_p99_ms"]["median"]
    # Every message of every run was delivered: 2 pairs x 20, or x 50 rounded up.
    assert sorted(s["messages"] for s in report["samples"]) == [40, 100]


def test_relay_drain(tmp_path: Path) -> None:
    report = run_quick("relay-drain", tmp_path)
    (sample,) = report["samples"]
    assert sample["messages"] == 2 * 60
    _positive(report["results"]["SQLite"]["messages_per_s"])
    assert sample["envelopes_per_frame"] >= 1
    assert 0 < sample["envelope_encode_us"] < sample["betterproto2_encode_us"]


def test_gateway_idle(tmp_path: Path) -> None:
    report = run_quick("gateway-idle", tmp_path)
    (sample,) = report["samples"]
    assert sample["connections"] == 20
    # Two server workers and two client processes: the layout of the full run.
    assert (sample["workers"], sample["client_processes"]) == (2, 2)
    assert sample["fan_out_seconds"] > 0
    assert sample["server_rss_mb"] > 1


def test_rest(tmp_path: Path) -> None:
    report = run_quick("rest", tmp_path)
    results = report["results"]
    for variant in ("POST /v1/messages", "bare Quart-Trio route"):
        _positive(results[variant]["requests_per_s"])
        _positive(results[variant]["server_cpu_us_per_request"])
    _positive(results["messages_vs_bare"]["requests_per_s"])


def test_campaign(tmp_path: Path) -> None:
    report = run_quick("campaign", tmp_path)
    (sample,) = report["samples"]
    assert sample["devices"] == 300
    assert sample["failed"] == 0
    assert sample["failure_reasons"] == {}
    assert 0 < sample["seconds_to_queue"] <= sample["seconds_to_deliver"]
