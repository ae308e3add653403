"""``GET /metrics``: the Prometheus text format, summed over worker processes when the
server runs several (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def render() -> tuple[bytes, str]:
    """The current metrics and their content type."""
    directory = os.environ.get(MULTIPROCESS_DIR)
    if not directory:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST
