"""What every scenario reports: machine and versions, parameters, median/min/max over
repetitions, ratios computed within each repetition, a JSON file and a PNG plot in
``bench-results/``, and a ``rich`` progress display while it runs."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

_PACKAGES = (
    "trio",
    "hypercorn",
    "quart",
    "quart-trio",
    "trio-websocket",
    "h2",
    "httpx",
    "aioapns",
    "sqlalchemy",
    "psycopg",
    "betterproto2",
)
console = Console(stderr=True)


def add_run_options(parser: argparse.ArgumentParser, *, repetitions: int) -> None:
    """The options every scenario takes: how often it runs, where the report goes, and
    ``--quick``."""
    parser.add_argument(
        "--repetitions",
        type=int,
        default=repetitions,
        help="runs of the scenario; the report gives each metric's median and range",
    )
    parser.add_argument(
        "--output",
        default="bench-results",
        help="directory the JSON report and its plot are written to",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a tiny run that checks the harness (CI)"
    )


def summary(values: Sequence[float]) -> dict[str, float]:
    """``{median, min, max}`` of repetitions."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def by_variant(samples: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Summaries of every numeric metric of the samples, per ``variant`` (in the order
    the variants first appear)."""
    results: dict[str, dict[str, dict[str, float]]] = {}
    for variant in dict.fromkeys(sample["variant"] for sample in samples):
        runs = [sample for sample in samples if sample["variant"] == variant]
        metrics = [
            key
            for key, value in runs[0].items()
            if key != "repetition" and isinstance(value, int | float)
        ]
        results[variant] = {metric: summary([run[metric] for run in runs]) for metric in metrics}
    return results


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def machine() -> dict[str, Any]:
    """Where the numbers were taken."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "load_average": os.getloadavg(),
        "versions": versions,
    }


@dataclass(frozen=True)
class Bar:
    """One bar of a plot: a median with its min-max range."""

    label: str
    median: float
    low: float
    high: float


@dataclass(frozen=True)
class Panel:
    """One chart of the plot."""

    title: str
    unit: str
    bars: tuple[Bar, ...]


def bars(results: dict[str, dict[str, dict[str, float]]], metric: str) -> tuple[Bar, ...]:
    """Bars of ``metric`` for each variant of ``results`` (variant -> metric -> summary)."""
    return tuple(
        Bar(name, values[metric]["median"], values[metric]["min"], values[metric]["max"])
        for name, values in results.items()
        if metric in values
    )


def _plot(path: Path, title: str, panels: Sequence[Panel]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for axis, panel in zip(axes[0], panels, strict=True):
        labels = [bar.label for bar in panel.bars]
        medians = [bar.median for bar in panel.bars]
        errors = [
            [bar.median - bar.low for bar in panel.bars],
            [bar.high - bar.median for bar in panel.bars],
        ]
        axis.bar(labels, medians, yerr=errors, capsize=6, color="#4c72b0")
        axis.set_title(panel.title)
        axis.set_ylabel(panel.unit)
        for index, value in enumerate(medians):
            axis.annotate(f"{value:,.0f}", (index, value), ha="center", va="bottom", fontsize=8)
        axis.tick_params(axis="x", labelrotation=15)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write(
    output: str | Path,
    scenario: str,
    *,
    parameters: dict[str, Any],
    results: dict[str, Any],
    samples: list[dict[str, Any]],
    panels: Sequence[Panel],
) -> Path:
    """Write ``<scenario>-<time>.json`` and its ``.png``; returns the JSON path."""
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{scenario}-{time.strftime('%Y%m%dT%H%M%S')}"
    report = {
        "scenario": scenario,
        "machine": machine(),
        "parameters": parameters,
        "results": results,
        "samples": samples,
        "plot": f"{stem}.png",
    }
    path = folder / f"{stem}.json"
    path.write_text(json.dumps(report, indent=2))
    _plot(folder / f"{stem}.png", f"relay bench {scenario}", panels)
    console.print_json(json.dumps(results))
    console.print(f"report: {path} (plot {folder / (stem + '.png')})")
    return path


@contextmanager
def progress(description: str, total: int) -> Iterator[Any]:
    """A progress bar over ``total`` steps; call ``advance()`` on what it yields."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=total)

        class _Step:
            def advance(self, label: str | None = None) -> None:
                bar.advance(task)
                if label:
                    bar.update(task, description=f"{description}: {label}")

        yield _Step()
