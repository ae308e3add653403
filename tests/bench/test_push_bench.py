"""``relay bench push --quick`` runs end to end and writes a sane report (no timing
assertions: speed is judged from full runs, never by tests)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.process import environment, run_relay


def test_the_quick_push_benchmark_writes_a_report(tmp_path: Path) -> None:
    result = run_relay("bench", "push", "--quick", "--output", str(tmp_path), env=environment())
    assert result.returncode == 0, result.stderr
    [path] = tmp_path.glob("push-*.json")
    report = json.loads(path.read_text())
    assert report["scenario"] == "push"
    assert report["parameters"]["count"] == 200
    assert {s["client"] for s in report["samples"]} == {"pool", "httpx"}
    for sample in report["samples"]:
        assert sample["pushes"] == 200
        assert sample["rate"] > 0
        assert sample["cpu_us_per_push"] > 0
    for key in ("pool", "httpx"):
        summary = report[key]["pushes_per_s"]
        assert summary["min"] <= summary["median"] <= summary["max"]
    assert report["ratio_pushes_per_s"]["median"] > 0
