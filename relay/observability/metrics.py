"""Every Prometheus metric the server exports, defined once.

Names and labels follow Prometheus conventions: base units (seconds, bytes), counters
end in ``_total``. No label carries a user, device, token or anything unbounded: routes
are the route table's templates, push reasons a fixed vocabulary, apps the operator's
own push apps.

With several worker processes (``RELAY_SERVER_WORKERS``) prometheus-client's
multiprocess mode is on (``PROMETHEUS_MULTIPROC_DIR``, set by the supervisor before the
workers import this module): each process writes its values to a file and ``/metrics``
sums them (gauges: per ``multiprocess_mode``).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "relay_http_requests",
    "HTTP requests answered, by route template, method and status",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "relay_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
RATE_LIMITED = Counter(
    "relay_rate_limited_requests", "Requests refused with 429, by rate-limit tier", ["tier"]
)

GATEWAY_SESSIONS = Gauge(
    "relay_gateway_sessions", "Gateway sessions open", multiprocess_mode="livesum"
)
GATEWAY_FRAMES = Counter("relay_gateway_frames_sent", "Envelope batch frames sent")
GATEWAY_ENVELOPES = Counter("relay_gateway_envelopes_sent", "Envelopes sent")
GATEWAY_ACKS = Counter("relay_gateway_acks_received", "Message ids acknowledged by clients")
GATEWAY_TAKEOVERS = Counter(
    "relay_gateway_takeovers", "Sessions closed because the device connected again"
)

MESSAGES_QUEUED = Counter("relay_messages_queued", "Messages queued for delivery")
MESSAGES_DELETED = Counter("relay_messages_deleted", "Acknowledged messages deleted")

PUSH_JOBS = Counter(
    "relay_push_jobs",
    "Push delivery decisions, by app, provider and outcome (sent, retried, failed, "
    "removed, refused...) and reason",
    ["app", "provider", "outcome", "reason"],
)
PUSH_QUEUE_DEPTH = Gauge(
    "relay_push_queue_depth", "Push jobs waiting to be delivered", multiprocess_mode="max"
)
PUSH_QUEUE_OLDEST_DUE_AGE = Gauge(
    "relay_push_queue_oldest_due_age_seconds",
    "How long the longest-due push job has been due (0: none due)",
    multiprocess_mode="max",
)
PUSH_TOKENS_REMOVED = Counter(
    "relay_push_tokens_removed", "Device tokens removed after a provider called them invalid"
)
PUSH_BREAKER_OPEN = Gauge(
    "relay_push_removal_breaker_open",
    "1 while token removal is held for an app (too many removals at once)",
    ["app"],
    multiprocess_mode="max",
)

PROVIDER_CONNECTIONS = Gauge(
    "relay_provider_connections",
    "Open HTTP/2 connections to push providers",
    ["provider"],
    multiprocess_mode="livesum",
)
PROVIDER_STREAMS = Gauge(
    "relay_provider_streams_in_use",
    "HTTP/2 streams in use on provider connections",
    ["provider"],
    multiprocess_mode="livesum",
)

DB_WAIT = Histogram(
    "relay_db_wait_seconds",
    "Time a database call waited for a connection thread before its work started",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
DB_WRITE_BATCH = Histogram(
    "relay_db_write_batch_size",
    "Units of work committed together by the group-commit writer",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)


class DatabaseMetrics:
    """The :class:`storage.db.DatabaseObserver` that feeds the database histograms
    (storage reports to an observer: it does not know the server)."""

    def waited(self, seconds: float) -> None:
        """See :class:`storage.db.DatabaseObserver`."""
        DB_WAIT.observe(seconds)

    def write_batch(self, units: int) -> None:
        """See :class:`storage.db.DatabaseObserver`."""
        DB_WRITE_BATCH.observe(units)
