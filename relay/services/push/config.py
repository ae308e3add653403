"""How the push core sends: provider endpoints, pools, concurrency, retries, retention."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from providers.client import Endpoints
from providers.h2pool import PoolConfig, client_ssl_context
from relay.services.push.breaker import BreakerConfig
from relay.services.push.feedback import FeedbackConfig
from relay.services.push.retry import RetryPolicy


@dataclass(frozen=True)
class PushConfig:
    """How the push core sends."""

    endpoints: Endpoints = field(default_factory=Endpoints)
    pool: PoolConfig = field(default_factory=PoolConfig)
    ca_file: str | None = None
    concurrency: int = 100
    poll_interval: float = 1.0
    visibility_secs: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    wakeup_app: str = "relay"
    invalid_token_batch: int = 50
    invalid_token_interval: float = 5.0
    retention_secs: int = 86400
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    feedback: FeedbackConfig | None = None
    """The operator's webhook for removed tokens and failed jobs, if configured."""

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context of provider connections (``ca_file`` trusted if given)."""
        return client_ssl_context(self.ca_file)
