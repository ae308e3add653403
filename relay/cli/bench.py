"""``relay bench``: run a benchmark scenario and write its report to bench-results/.

The product does not depend on the benchmark harness: its scenarios are looked up when
the command runs."""

from __future__ import annotations

import argparse
import sys

from relay.cli.command import Command
from relay.config import Settings


def _add_arguments(bench: argparse.ArgumentParser) -> None:
    bench.add_argument("scenario", help="push, relay-live, relay-drain, gateway-idle, rest, ...")
    bench.add_argument("options", nargs=argparse.REMAINDER, help="the scenario's options")


def _run(args: argparse.Namespace, settings: Settings | None) -> int:
    del settings  # a scenario configures the servers it starts
    from bench import scenarios

    scenario: str = args.scenario
    if scenario not in scenarios.SCENARIOS:
        names = ", ".join(scenarios.SCENARIOS)
        print(f"relay bench: no scenario {scenario!r} (one of {names})", file=sys.stderr)
        return 2
    options: list[str] = args.options
    return scenarios.run(scenario, options)


BENCH = Command(
    "bench", "run a benchmark scenario (see bench/)", _add_arguments, _run, takes_settings=False
)
