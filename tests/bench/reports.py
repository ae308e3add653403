"""Running a scenario's quick mode as a user would and reading its report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.process import environment, run_relay


def run_quick(scenario: str, output: Path, *extra: str) -> dict[str, Any]:
    """``relay bench SCENARIO --quick``: its JSON report, checked for the common parts
    (machine, parameters, a PNG plot next to it)."""
    result = run_relay(
        "bench",
        scenario,
        "--quick",
        "--output",
        str(output),
        *extra,
        env=environment(),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [path] = output.glob(f"{scenario}-*.json")
    report: dict[str, Any] = json.loads(path.read_text())
    assert report["scenario"] == scenario
    assert report["machine"]["cpus"] >= 1
    assert "trio" in report["machine"]["versions"]
    png = output / report["plot"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return report
