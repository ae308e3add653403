"""What a provider's answer means for a job and its token: the push core's decision table
(sans-IO; the README's outcome table is this function).

==========================  ===============================================================
provider answer             decision
==========================  ===============================================================
sent                        job ``sent``
retry (429, 5xx, network)   ``pending`` again, until the job's last attempt: then ``failed``
                            ("gave up after N attempts")
failed, auth-expired        job ``failed`` with the provider's reason; the token stays
unregistered, token-suspect job ``failed``; the token is removed unless it was registered
                            again since (APNs' timestamp, else the job's) or the app's
                            removal breaker is open
==========================  ===============================================================
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from providers.message import Outcome, Verdict
from storage.repos.push_jobs import JobState
from storage.repos.push_tokens import Removal


class Effect(enum.Enum):
    """What a decision counts as in :class:`PushStats`."""

    SENT = "sent"
    RETRIED = "retried"
    GAVE_UP = "gave-up"
    FAILED = "failed"
    REMOVED = "removed"
    REMOVAL_HELD = "removal-held"
    REFUSED = "refused"
    """Never reached a provider (no token, no credentials, ...)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """A job's next state and reason, and the token removal it calls for."""

    state: JobState
    reason: str | None
    effect: Effect
    removal: Removal | None = None
    retry_after: float | None = None
    """For a job pending again: the provider's ``Retry-After`` (seconds), if it gave one."""


def removal_reason(outcome: Outcome) -> str | None:
    """The reason the provider gave for the token being dead, if it did."""
    if outcome.verdict in (Verdict.UNREGISTERED, Verdict.TOKEN_SUSPECT):
        return outcome.reason
    return None


def decide(
    outcome: Outcome,
    *,
    attempt: int,
    max_attempts: int,
    token: str,
    registered_before: int,
    removal_allowed: bool,
) -> Decision:
    """The decision for ``outcome`` of the ``attempt``-th attempt (1-based) of a job.

    ``registered_before`` (µs): a removal spares a token registered at or after it;
    ``removal_allowed``: whether the app's removal breaker is closed.
    """
    if outcome.verdict is Verdict.SENT:
        return Decision(JobState.SENT, None, Effect.SENT)
    if outcome.verdict is Verdict.RETRY:
        if attempt >= max_attempts:
            reason = f"gave up after {attempt} attempts: {outcome.reason}"
            return Decision(JobState.FAILED, reason, Effect.GAVE_UP)
        reason = f"retrying: {outcome.reason}"
        return Decision(JobState.PENDING, reason, Effect.RETRIED, retry_after=outcome.retry_after)
    if removal_reason(outcome) is None:
        return Decision(JobState.FAILED, outcome.reason, Effect.FAILED)
    if not removal_allowed:
        reason = f"{outcome.reason} (token kept: removal breaker open)"
        return Decision(JobState.FAILED, reason, Effect.REMOVAL_HELD)
    before = registered_before
    if outcome.unregistered_at_ms is not None:
        # APNs says since when the token is invalid: keep it if registered after that.
        before = outcome.unregistered_at_ms * 1000
    return Decision(JobState.FAILED, outcome.reason, Effect.REMOVED, Removal(token, before))


def refused(reason: str) -> Decision:
    """A job that fails before reaching a provider."""
    return Decision(JobState.FAILED, reason, Effect.REFUSED)


@dataclass
class PushStats:
    """Decisions counted since start-up."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    expired: int = 0
    removals: int = 0
    removals_held: int = 0

    def count(self, effect: Effect) -> None:
        """Count one decision."""
        if effect is Effect.SENT:
            self.sent += 1
        elif effect is Effect.RETRIED:
            self.retried += 1
        elif effect is not Effect.REFUSED:
            self.failed += 1
            if effect is Effect.REMOVED:
                self.removals += 1
            elif effect is Effect.REMOVAL_HELD:
                self.removals_held += 1


_WARNED = frozenset({Effect.FAILED, Effect.GAVE_UP, Effect.REMOVAL_HELD})


class OutcomeWarnings:
    """One warning per (app, provider, kind of failure) per ``interval`` seconds, with
    how many there were: credential errors, provider refusals, give-ups and transport
    failures (retried ones included: a broken certificate chain is an operator's problem
    long before the give-up). Sans-IO: :meth:`note` returns the line to log, if any."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._since: dict[tuple[str, str, str], tuple[float, int]] = {}

    def note(
        self, app: str, provider: str, outcome: Outcome, effect: Effect, now: float
    ) -> str | None:
        """Count one decision; the warning to log now, or None."""
        transport = outcome.reason.startswith("transport")
        if effect not in _WARNED and not transport:
            return None
        # The kind is the reason up to its first colon: "credentials", "transport",
        # a provider's error code; the details vary per send and go into the line only.
        kind = f"{effect.value}: {outcome.reason.split(':', 1)[0]}"
        key = (app, provider, kind)
        last, count = self._since.get(key, (float("-inf"), 0))
        count += 1
        if now - last < self._interval:
            self._since[key] = (last, count)
            return None
        self._since[key] = (now, 0)
        return (
            f"push app {app} via {provider}: {count} {effect.value} "
            f"({outcome.reason}) since the last report"
        )
