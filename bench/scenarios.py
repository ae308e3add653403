"""The scenarios of ``relay bench`` and the module that runs each."""

from __future__ import annotations

import importlib

SCENARIOS = {
    "push": "bench.push",
    "relay-live": "bench.relay_live",
    "relay-drain": "bench.relay_drain",
    "gateway-idle": "bench.gateway_idle",
    "rest": "bench.rest",
    "campaign": "bench.campaign",
    "blobs": "bench.blobs",
}


def run(scenario: str, argv: list[str]) -> int:
    """Run ``scenario`` with its own command-line options."""
    module = importlib.import_module(SCENARIOS[scenario])
    result: int = module.main(argv)
    return result
