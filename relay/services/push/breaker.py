"""A per-app circuit breaker on token removal (sans-IO).

Removing a token on a "token is bad" answer is right for one device and disastrous for a
misconfiguration: a sandbox key on the production host makes APNs answer
``BadDeviceToken`` for every token of the app. So each app keeps its last ``window``
outcomes; when at least ``min_samples`` are known and one removal reason makes up
``max_share`` or more of them, removals for that app stop for ``cooldown_secs`` (the
notifications still fail, the tokens stay). The operator sees one warning.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass

log = logging.getLogger("relay.push")


@dataclass(frozen=True)
class BreakerConfig:
    """Thresholds of :class:`RemovalBreaker`."""

    window: int = 200
    min_samples: int = 20
    max_share: float = 0.5
    cooldown_secs: float = 600.0


class _AppWindow:
    def __init__(self, size: int) -> None:
        self.outcomes: deque[str | None] = deque(maxlen=size)
        self.counts: Counter[str] = Counter()
        self.open_until = 0.0


class RemovalBreaker:
    """See the module docstring."""

    def __init__(self, config: BreakerConfig, clock: Callable[[], float]) -> None:
        self._config = config
        self._clock = clock
        self._apps: dict[Hashable, _AppWindow] = {}
        self.trips = 0

    def record(self, app: uuid.UUID | None, removal_reason: str | None) -> None:
        """One send of ``app``: the removal reason it produced, or None."""
        window = self._apps.get(app)
        if window is None:
            window = self._apps[app] = _AppWindow(self._config.window)
        if len(window.outcomes) == window.outcomes.maxlen:
            evicted = window.outcomes[0]
            if evicted is not None:
                window.counts[evicted] -= 1
        window.outcomes.append(removal_reason)
        if removal_reason is None:
            return
        window.counts[removal_reason] += 1
        samples = len(window.outcomes)
        if samples < self._config.min_samples:
            return
        share = window.counts[removal_reason] / samples
        now = self._clock()
        if share >= self._config.max_share and now >= window.open_until:
            window.open_until = now + self._config.cooldown_secs
            self.trips += 1
            log.warning(
                "push app %s: %.0f%% of the last %d sends failed with %s; token removal is "
                "suspended for %d s (check the app's credentials and environment)",
                app,
                100 * share,
                samples,
                removal_reason,
                self._config.cooldown_secs,
            )

    def held(self) -> dict[str, bool]:
        """Every app sent for so far (its id, ``none`` for app-less sends): whether its
        token removal is held now."""
        now = self._clock()
        return {
            "none" if app is None else str(app): now < window.open_until
            for app, window in self._apps.items()
        }

    def allows_removal(self, app: uuid.UUID | None) -> bool:
        """False while the app's breaker is open."""
        window = self._apps.get(app)
        return window is None or self._clock() >= window.open_until
