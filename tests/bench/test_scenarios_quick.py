"""Every scenario's ``--quick`` mode runs end to end as a user runs it (``relay bench``,
real server and emulator processes) and writes a sane report with its plot. No timing
assertions: speed is judged from full runs, never by tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.bench.reports import run_quick


@pytest.fixture
def database_option() -> tuple[list[str], str]:
    """``--database-url`` of the suite's PostgreSQL server when the suite runs on
    PostgreSQL (the scenario makes a scratch database there), and the report's name
    for the database."""
    url = os.environ.get("RELAY_TEST_DATABASE_URL")
    return (["--database-url", url], "PostgreSQL") if url else ([], "SQLite")


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


def test_relay_live_on_several_nodes(
    tmp_path: Path, database_option: tuple[list[str], str]
) -> None:
    option, database = database_option
    report = run_quick("relay-live", tmp_path, "--nodes", "2", "--batches", "50", *option)
    layouts = ["1 node", "1 node, Redis bus", "2 nodes, Redis bus, haproxy"]
    assert list(report["results"]) == [f"50/POST, {name}" for name in layouts] + [
        "50 per POST ratios"
    ]
    for sample in report["samples"]:
        assert sample["messages"] == 4 * 500  # 2 pairs per node, every message delivered
        assert sample["database"] == database
        _positive(report["results"][sample["variant"]]["server_cpu_us_per_message"])
    balanced = report["results"]["50/POST, 2 nodes, Redis bus, haproxy"]
    # haproxy named the node of every POST and gateway: each delivery is classified.
    share = balanced["same_node_share"]["median"]
    assert 0 <= share <= 1
    assert ("same_node_p99_ms" in balanced) == (share > 0)
    assert ("cross_node_p99_ms" in balanced) == (share < 1)
    _positive(report["results"]["50 per POST ratios"]["bus_vs_local_server_cpu"])


def test_relay_drain(tmp_path: Path, database_option: tuple[list[str], str]) -> None:
    option, database = database_option
    report = run_quick("relay-drain", tmp_path, *option)
    (sample,) = report["samples"]
    assert sample["messages"] == 2 * 60
    _positive(report["results"][database]["messages_per_s"])
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


def test_campaign(tmp_path: Path, database_option: tuple[list[str], str]) -> None:
    report = run_quick("campaign", tmp_path, *database_option[0])
    (sample,) = report["samples"]
    assert sample["devices"] == 300
    assert sample["failed"] == 0
    assert sample["failure_reasons"] == {}
    assert 0 < sample["seconds_to_queue"] <= sample["seconds_to_deliver"]


def test_blobs(tmp_path: Path) -> None:
    report = run_quick("blobs", tmp_path)
    results = report["results"]
    for variant in ("straight to S3", "through the relay"):
        for metric in ("upload_mib_per_s", "download_mib_per_s", "round_trip_mib_per_s"):
            _positive(results[variant][metric])
    assert results["through the relay"]["server_cpu_ms_per_mib"]["median"] >= 0
    _positive(results["relay_vs_direct"]["round_trip_mib_per_s"])
