"""Provider-neutral notifications, targets and outcomes."""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field


class Platform(enum.Enum):
    """A push service."""

    APNS = "apns"
    FCM = "fcm"
    HMS = "hms"


class Environment(enum.Enum):
    """APNs production or sandbox (FCM and HMS have one environment)."""

    PRODUCTION = "production"
    DEVELOPMENT = "development"


@dataclass(frozen=True)
class PushMessage:
    """What to deliver, before it is shaped for one provider.

    ``data`` values are strings (FCM allows nothing else). ``silent`` makes a background /
    data-only push; otherwise ``title``/``body`` form a visible alert. ``expires_at`` (Unix
    seconds) becomes ``apns-expiration`` and the FCM/HMS TTL.
    """

    data: Mapping[str, str] = field(default_factory=dict)
    title: str | None = None
    body: str | None = None
    sound: str | None = None
    badge: int | None = None
    category: str | None = None
    thread_id: str | None = None
    # Localised alerts: keys into the app's strings, with their format arguments.
    title_loc_key: str | None = None
    title_loc_args: tuple[str, ...] = ()
    body_loc_key: str | None = None
    body_loc_args: tuple[str, ...] = ()
    icon: str | None = None  # Android notification icon (FCM, HMS)
    silent: bool = False
    high_priority: bool = True
    collapse_key: str | None = None
    expires_at: int | None = None
    mutable_content: bool = False
    push_type: str | None = None
    # The exact JSON to encrypt end to end, when a face has its own schema (Zulip's);
    # without it the visible fields and data are encrypted.
    plaintext: str | None = None
    # End-to-end encrypted: ``data`` holds ``encrypted_data``. APNs then shows a
    # placeholder alert for the Notification Service Extension; FCM/HMS send data only.
    encrypted: bool = False

    def to_json(self) -> str:
        """The message as stored in a push job."""
        default = _DEFAULT
        fields = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }
        if "data" in fields:
            fields["data"] = dict(fields["data"])
        for name in _TUPLES:
            if name in fields:
                fields[name] = list(fields[name])
        return json.dumps(fields, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> PushMessage:
        """Read a message written by :meth:`to_json`."""
        fields = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in fields.items() if k in known}
        for name in _TUPLES:
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)

    def android_notification(self) -> dict[str, object]:
        """The Android display fields shared by FCM and HMS (``android.notification``)."""
        fields: dict[str, object] = {}
        for key, value in (
            ("title_loc_key", self.title_loc_key),
            ("title_loc_args", list(self.title_loc_args)),
            ("body_loc_key", self.body_loc_key),
            ("body_loc_args", list(self.body_loc_args)),
            ("icon", self.icon),
            ("sound", self.sound),
            ("tag", self.category),
        ):
            if value:
                fields[key] = value
        return fields


_DEFAULT = PushMessage()
_TUPLES = ("title_loc_args", "body_loc_args")


class Verdict(enum.Enum):
    """What a provider's answer means for the delivery and the token."""

    SENT = "sent"
    RETRY = "retry"  # transient: try again later (honouring retry_after)
    FAILED = "failed"  # permanent for this notification; the token stays
    UNREGISTERED = "unregistered"  # the token is dead: a safe signal to remove it
    TOKEN_SUSPECT = "token-suspect"  # noqa: S105 - probably dead, or a misconfiguration: breaker-guarded
    AUTH_EXPIRED = "auth-expired"  # our cached provider token was refused: refresh, resend


@dataclass(frozen=True, slots=True)
class Outcome:
    """The classified result of one send."""

    verdict: Verdict
    reason: str
    status: int = 0
    retry_after: float | None = None
    unregistered_at_ms: int | None = None
    provider_id: str | None = None
