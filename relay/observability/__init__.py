"""What operators watch: Prometheus metrics (``metrics``: the families; ``exposition``:
``GET /metrics``, aggregated over worker processes)."""
