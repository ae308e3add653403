"""The one settings object, loaded from flags, ``RELAY_*`` and ``OBSCURA_*`` variables.

Every setting of the Obscura reference server exists here with the same default, under
``RELAY_<SUFFIX>`` and under ``OBSCURA_<SUFFIX>`` (so an Obscura deployment's
environment works unchanged), and as ``relay serve --<suffix-with-dashes>`` (plus the
reference's own flag spelling where it differs, e.g. ``--db-url``). Precedence: flag,
then ``RELAY_``, then ``OBSCURA_``, then the default.

Values are parsed and validated eagerly: a bad value stops start-up with a message that
names the variable or flag it came from (:class:`SettingError`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from storage.redis.address import RedisAddress

ENV_PREFIXES = ("RELAY_", "OBSCURA_")
# The reference server's well-known default: accepted only outside production.
DEFAULT_JWT_SECRET = "change_me_in_production"  # noqa: S105
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingError(ValueError):
    """A setting has an invalid value; the message names where it came from."""


def _parse_int(text: str) -> int:
    return int(text.strip().replace("_", ""))


def _parse_float(text: str) -> float:
    return float(text.strip())


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _parse_str(text: str) -> str:
    return text


def _parse_networks(text: str) -> tuple[IPNetwork, ...]:
    networks = []
    for item in text.split(","):
        item = item.strip()
        if item:
            networks.append(ipaddress.ip_network(item, strict=False))
    return tuple(networks)


def _parse_origins(text: str) -> tuple[str, ...]:
    origins = []
    for item in text.split(","):
        origin = item.strip().rstrip("/")
        if not origin:
            continue
        if origin != "*" and (
            not origin.startswith(("http://", "https://")) or "/" in origin.split("://", 1)[1]
        ):
            raise ValueError(f"{origin!r} is not an origin (scheme://host[:port]) or *")
        origins.append(origin)
    return tuple(origins)


def _parse_environment(text: str) -> str:
    lowered = text.strip().lower()
    if lowered not in ("development", "production"):
        raise ValueError("expected development or production")
    return lowered


def _parse_blob_store(text: str) -> str:
    lowered = text.strip().lower()
    if lowered not in ("fs", "s3"):
        raise ValueError("expected fs or s3")
    return lowered


def _parse_redis_url(text: str) -> str:
    RedisAddress.parse(text.strip())  # the client's own parser: refused now, not later
    return text.strip()


def _parse_key_map(text: str) -> str:
    # A JSON object of Base64 strings; whether each pair matches is checked at start-up.
    import json

    loaded = json.loads(text)
    if not isinstance(loaded, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in loaded.items()
    ):
        raise ValueError("expected a JSON object {public_b64: private_b64}")
    return text


def _parse_log_format(text: str) -> str:
    value = text.strip().lower()
    if value not in ("text", "json"):
        raise ValueError("expected text or json")
    return value


def _parse_log_level(text: str) -> str:
    upper = text.strip().upper()
    if upper not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("expected debug, info, warning or error")
    return upper


_PARSERS: dict[str, Callable[[str], Any]] = {
    "int": _parse_int,
    "float": _parse_float,
    "bool": _parse_bool,
    "str": _parse_str,
    "str | None": _parse_str,
}

_T = TypeVar("_T")


def _setting(
    default: _T,
    help: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    parse: Callable[[str], Any] | None = None,
    flags: Sequence[str] = (),
    secret: bool = False,
    aliases: Sequence[str] = (),
) -> _T:
    """A setting: its default (typed, so mypy checks it against the field) and what
    the environment, the flags and the README table need to know."""
    metadata = {
        "help": help,
        "minimum": minimum,
        "maximum": maximum,
        "parse": parse,
        "flags": tuple(flags),
        "secret": secret,
        "aliases": tuple(aliases),
    }
    result: _T = field(default=default, metadata=metadata)
    return result


def _default_networks() -> tuple[IPNetwork, ...]:
    return _parse_networks("10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,127.0.0.1/32,::1/128")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every tunable of the server. Build it with :func:`load_settings`."""

    # --- relay (this implementation) ---------------------------------------------------
    env: str = _setting(
        "development",
        "development or production; production refuses a generated or default JWT secret",
        parse=_parse_environment,
    )
    data_dir: str = _setting(
        "./relay-data", "directory for the embedded SQLite database, blobs and dev secrets"
    )
    database_url: str | None = _setting(
        None,
        "sqlite:///path or postgresql://user@host/db (default: SQLite in the data directory)",
        flags=("--db-url",),
    )
    auto_migrate: bool = _setting(True, "apply pending database migrations at start-up")
    log_level: str = _setting("INFO", "debug, info, warning or error", parse=_parse_log_level)
    log_format: str = _setting(
        "text",
        "text or json (one JSON object per line)",
        parse=_parse_log_format,
        aliases=("OBSCURA_TELEMETRY_LOG_FORMAT",),
    )
    access_log: bool = _setting(False, "log one line per HTTP request (method, route, status...)")
    ttl_days: int = _setting(30, "lifetime of messages and attachments, in days", minimum=0)

    # --- event bus (several hosts) ---------------------------------------------------------
    pubsub_url: str | None = _setting(
        None,
        "redis://host:port/db shared by every host: gateway events cross hosts "
        "(unset: one host, no Redis)",
        parse=_parse_redis_url,
        secret=True,
    )
    pubsub_min_backoff_secs: int = _setting(
        1, "first delay before reconnecting to the event bus", minimum=0
    )
    pubsub_max_backoff_secs: int = _setting(
        30, "longest delay between event-bus reconnects", minimum=1
    )

    # --- database pool -------------------------------------------------------------------
    database_max_connections: int = _setting(
        20,
        "connections in the pool (and concurrent DB threads)",
        minimum=1,
        flags=("--db-max-connections",),
    )
    database_acquire_timeout_secs: int = _setting(
        3,
        "seconds to wait for a pooled connection",
        minimum=1,
        flags=("--db-acquire-timeout-secs",),
    )
    database_max_lifetime_secs: int = _setting(
        1800,
        "seconds before a connection is recycled",
        minimum=1,
        flags=("--db-max-lifetime-secs",),
    )

    # --- server --------------------------------------------------------------------------
    server_host: str = _setting("127.0.0.1", "interface both listeners bind to")
    server_port: int = _setting(3000, "API port (0 picks a free port)", minimum=0, maximum=65535)
    server_mgmt_port: int = _setting(
        9090,
        "management port: /livez, /readyz (0 picks a free port)",
        minimum=0,
        maximum=65535,
        flags=("--mgmt-port",),
    )
    server_workers: int = _setting(
        1,
        "server processes sharing the API port (1: this process serves alone)",
        minimum=1,
        maximum=64,
    )
    server_shutdown_timeout_secs: int = _setting(
        5, "seconds background work gets to finish at shutdown", minimum=0
    )
    server_request_timeout_secs: int = _setting(
        30, "timeout (408) of the auth and standard routes, body included", minimum=1
    )
    server_global_timeout_secs: int = _setting(600, "catch-all request timeout (408)", minimum=1)
    server_trusted_proxies: tuple[IPNetwork, ...] = _setting(
        _default_networks(),
        "comma-separated CIDRs whose X-Forwarded-For is trusted",
        parse=_parse_networks,
        flags=("--trusted-proxies",),
    )
    cors_origins: tuple[str, ...] = _setting(
        (),
        "comma-separated origins allowed to call the API from a browser, or * (empty: off)",
        parse=_parse_origins,
    )

    # --- authentication ------------------------------------------------------------------
    auth_jwt_secret: str | None = _setting(
        None,
        "HS256 secret for access tokens (default: generated and kept in the data directory)",
        secret=True,
    )
    auth_token_ttl_secs: int = _setting(900, "access-token lifetime in seconds", minimum=1)
    auth_refresh_token_ttl_days: int = _setting(30, "refresh-token lifetime in days", minimum=0)
    auth_max_devices_per_user: int = _setting(10, "devices per user (403 beyond)", minimum=1)
    auth_refresh_token_cleanup_interval_secs: int = _setting(
        86400, "how often expired refresh tokens are deleted (0 disables)", minimum=0
    )
    auth_password_hash_memory_kib: int = _setting(
        19456, "argon2id memory per password hash, in KiB", minimum=8
    )
    auth_password_hash_iterations: int = _setting(2, "argon2id passes per password hash", minimum=1)

    # --- rate limiting (per client IP, GCRA) ---------------------------------------------
    rate_limit_per_second: int = _setting(10, "standard tier: requests per second", minimum=1)
    rate_limit_burst: int = _setting(20, "standard tier: burst size", minimum=1)
    rate_limit_auth_per_second: int = _setting(
        1, "auth tier: requests per second", minimum=1, flags=("--auth-rate-limit-per-second",)
    )
    rate_limit_auth_burst: int = _setting(
        3, "auth tier: burst size", minimum=1, flags=("--auth-rate-limit-burst",)
    )

    # --- messaging -----------------------------------------------------------------------
    messaging_send_batch_limit: int = _setting(
        100, "submissions per POST /v1/messages (413 beyond)", minimum=1
    )
    messaging_idempotency_ttl_secs: int = _setting(
        86400, "how long a POST /v1/messages response is replayed", minimum=1
    )
    messaging_inbox_max_size: int = _setting(
        1000, "pending messages kept per device (oldest pruned)", minimum=1
    )
    messaging_cleanup_interval_secs: int = _setting(
        300, "period of message expiry and inbox pruning", minimum=1
    )
    messaging_batch_limit: int = _setting(
        50,
        "messages deleted per transaction by the expiry and inbox-size clean-up",
        minimum=1,
    )
    pre_key_refill_threshold: int = _setting(
        20, "one-time pre-key count below which clients are told to refill", minimum=0
    )
    pre_keys_max: int = _setting(100, "one-time pre-keys per device and per upload", minimum=1)

    # --- websocket gateway ---------------------------------------------------------------
    ws_ticket_ttl_secs: int = _setting(30, "gateway ticket lifetime in seconds", minimum=1)
    ws_message_fetch_batch_size: int = _setting(
        50, "envelopes fetched per page and sent per frame", minimum=1
    )
    ws_max_batch_bytes: int = _setting(
        8388608, "summed envelope bytes per EnvelopeBatch frame", minimum=1
    )
    ws_ack_batch_size: int = _setting(100, "acked ids per DELETE", minimum=1)
    ws_ack_flush_interval_ms: int = _setting(
        500, "max delay before acked ids are deleted", minimum=1
    )
    ws_ack_buffer_size: int = _setting(1000, "acked ids waiting per device", minimum=1)
    ws_outbound_buffer_size: int = _setting(32, "outbound frames queued per connection", minimum=1)
    ws_outbound_buffer_bytes: int = _setting(
        8388608,
        "outbound bytes queued per connection (a larger frame is sent alone)",
        minimum=1,
    )
    ws_ping_interval_secs: int = _setting(30, "server ping period (0 is treated as 1)", minimum=0)
    ws_ping_timeout_secs: int = _setting(10, "silence tolerated after a ping period", minimum=0)
    ws_prekey_debounce_interval_ms: int = _setting(
        500, "debounce of low pre-key notifications", minimum=0
    )

    # --- blob store ------------------------------------------------------------------------
    blob_store: str = _setting(
        "fs",
        "where attachments and backups live: fs (the data directory) or s3",
        parse=_parse_blob_store,
    )
    storage_bucket: str | None = _setting(None, "S3 bucket (RELAY_BLOB_STORE=s3)")
    storage_region: str = _setting("us-east-1", "S3 region the requests are signed for")
    storage_endpoint: str | None = _setting(
        None, "S3 endpoint URL, e.g. http://minio:9000 (default: AWS's for the region)"
    )
    storage_access_key: str | None = _setting(None, "S3 access key id", secret=True)
    storage_secret_key: str | None = _setting(None, "S3 secret access key", secret=True)
    storage_force_path_style: bool = _setting(
        False, "address objects as endpoint/bucket/key (MinIO and most S3-compatible servers)"
    )

    # --- attachments and backups ---------------------------------------------------------
    attachment_min_size_bytes: int = _setting(1, "smallest attachment", minimum=0)
    attachment_max_size_bytes: int = _setting(52428800, "largest attachment (413)", minimum=1)
    attachment_timeout_secs: int = _setting(120, "attachment request timeout (408)", minimum=1)
    attachment_prefix: str = _setting("attachments/", "blob-store prefix of attachments")
    attachment_cleanup_interval_secs: int = _setting(3600, "attachment expiry period", minimum=1)
    attachment_cleanup_batch_size: int = _setting(100, "attachments per cleanup batch", minimum=1)
    backup_min_size_bytes: int = _setting(32, "smallest backup", minimum=0)
    backup_max_size_bytes: int = _setting(2097152, "largest backup (413)", minimum=1)
    backup_timeout_secs: int = _setting(60, "backup request timeout (408)", minimum=1)
    backup_prefix: str = _setting("backups/", "blob-store prefix of backups")
    backup_stale_threshold_mins: int = _setting(
        30, "minutes after which an unfinished upload may be taken over", minimum=0
    )
    backup_cleanup_interval_secs: int = _setting(300, "stale backup-upload reset period", minimum=1)

    # --- push wake-ups -------------------------------------------------------------------
    notifications_push_delay_secs: int = _setting(
        2, "delay before an unacknowledged message triggers a wake-up push", minimum=0
    )
    notifications_visibility_timeout_secs: int = _setting(
        30, "lease of a push job being delivered", minimum=1
    )
    notifications_worker_interval_secs: int = _setting(1, "push queue polling period", minimum=1)
    notifications_worker_concurrency: int = _setting(100, "concurrent push deliveries", minimum=1)
    notifications_invalid_token_cleanup_interval_secs: int = _setting(
        5, "flush period of invalid-token removal", minimum=1
    )
    notifications_invalid_token_cleanup_batch_size: int = _setting(
        50, "invalid tokens removed per batch", minimum=1
    )

    fcm_project_id: str | None = _setting(
        None, "Obscura compatibility: FCM project of the wake-up app (with the credentials file)"
    )
    fcm_credentials_file: str | None = _setting(
        None, "Obscura compatibility: service-account JSON file installed as the wake-up app's FCM"
    )
    fcm_ttl_secs: int = _setting(
        604800, "lifetime of a wake-up push at the provider", minimum=0, maximum=2419200
    )

    # --- push core -----------------------------------------------------------------------
    push_wakeup_app: str = _setting(
        "relay", "name of the push app whose credentials send relay wake-ups"
    )
    push_credentials_key: str | None = _setting(
        None,
        "base64 32-byte key sealing provider credentials and push keys "
        "(default: generated in the data directory)",
        secret=True,
    )
    push_apns_production_url: str = _setting(
        "https://api.push.apple.com", "APNs production endpoint"
    )
    push_apns_development_url: str = _setting(
        "https://api.sandbox.push.apple.com", "APNs sandbox endpoint"
    )
    push_fcm_url: str = _setting("https://fcm.googleapis.com", "FCM HTTP v1 endpoint")
    push_fcm_token_url: str = _setting(
        "https://oauth2.googleapis.com/token", "Google OAuth2 token endpoint"
    )
    push_hms_url: str = _setting("https://push-api.cloud.huawei.com", "HMS Push Kit endpoint")
    push_hms_token_url: str = _setting(
        "https://oauth-login.cloud.huawei.com/oauth2/v3/token", "Huawei OAuth2 token endpoint"
    )
    push_ca_file: str | None = _setting(
        None, "extra CA certificates to trust for providers (the emulators' certificate)"
    )
    push_connections: int = _setting(2, "HTTP/2 connections per provider pool", minimum=1)
    push_max_streams_per_connection: int = _setting(
        250, "our cap on concurrent streams per connection", minimum=1
    )
    push_connect_timeout_secs: int = _setting(10, "provider connect timeout", minimum=1)
    push_response_timeout_secs: int = _setting(30, "provider response timeout", minimum=1)
    push_idle_ping_secs: int = _setting(60, "PING a provider connection idle this long", minimum=1)
    push_max_attempts: int = _setting(5, "delivery attempts before a push fails", minimum=1)
    push_retry_base_ms: int = _setting(1000, "first retry delay (doubles, with jitter)", minimum=1)
    push_retry_max_secs: int = _setting(300, "longest retry delay", minimum=1)
    push_job_retention_secs: int = _setting(
        86400, "how long finished push jobs (and their status) are kept", minimum=0
    )
    push_feedback_url: str | None = _setting(
        None, "POST a signed JSON event here per removed token and per failed push job"
    )
    push_feedback_secret: str | None = _setting(
        None, "HMAC-SHA256 key signing the feedback events (required with the URL)", secret=True
    )
    push_feedback_max_attempts: int = _setting(
        8, "deliveries of one feedback event before it is dropped", minimum=1, maximum=50
    )
    push_feedback_max_pending: int = _setting(
        10000, "feedback events kept waiting at most (newer ones are dropped)", minimum=1
    )

    # --- compatible push APIs (PowerAuth, Zulip, Rocket.Chat) ----------------------------
    powerauth_open: bool = _setting(
        False,
        "serve the PowerAuth API without integrator keys (trusted networks only; "
        "logs a warning at start-up)",
    )
    powerauth_multiple_activations: bool = _setting(
        False, "allow /push/device/create/multi (one token for several activations)"
    )
    powerauth_campaign_page_size: int = _setting(
        1000, "devices queued per campaign page (one transaction each)", minimum=1, maximum=10000
    )
    zulip_push_app: str = _setting(
        "zulip", "push app that Zulip registrations send through (created when needed)"
    )
    zulip_realm_name: str = _setting("Relay", "realm_name in Zulip notifications")
    rocketchat_push_app: str = _setting(
        "rocketchat",
        "push app of Rocket.Chat registrations whose appName names no app (created when needed)",
    )
    push_registration_encryption_keys: str | None = _setting(
        None,
        "Zulip bouncer key pairs, a JSON object {public_b64: private_b64} "
        "(added to those of relay keys bouncer)",
        parse=_parse_key_map,
        secret=True,
    )

    # --- health --------------------------------------------------------------------------
    health_db_timeout_ms: int = _setting(2000, "/readyz database check timeout", minimum=1)
    health_storage_timeout_ms: int = _setting(2000, "/readyz blob-store check timeout", minimum=1)
    health_pubsub_timeout_ms: int = _setting(
        2000, "/readyz event fan-out (hub) check timeout", minimum=1
    )

    @property
    def is_production(self) -> bool:
        """True when ``RELAY_ENV=production``."""
        return self.env == "production"


@dataclass(frozen=True)
class SettingSpec:
    """How one setting is named, parsed and documented (derived from the dataclass)."""

    name: str
    suffix: str
    flags: tuple[str, ...]
    parse: Callable[[str], Any]
    default: Any
    help: str
    minimum: float | None
    maximum: float | None
    secret: bool
    aliases: tuple[str, ...] = ()
    """Reference variables whose name is not ``OBSCURA_<SUFFIX>``."""

    @property
    def env_names(self) -> tuple[str, ...]:
        """``RELAY_<SUFFIX>`` first, then the ``OBSCURA_<SUFFIX>`` alias, then others."""
        return (*(prefix + self.suffix for prefix in ENV_PREFIXES), *self.aliases)


def _specs() -> tuple[SettingSpec, ...]:
    specs = []
    for item in dataclasses.fields(Settings):
        meta = item.metadata
        parse = meta["parse"] or _PARSERS[str(item.type)]
        flag = "--" + item.name.replace("_", "-")
        specs.append(
            SettingSpec(
                name=item.name,
                suffix=item.name.upper(),
                flags=(flag, *meta["flags"]),
                parse=parse,
                default=item.default,
                help=meta["help"],
                minimum=meta["minimum"],
                maximum=meta["maximum"],
                secret=meta["secret"],
                aliases=meta["aliases"],
            )
        )
    return tuple(specs)


SETTINGS: tuple[SettingSpec, ...] = _specs()


def _convert(spec: SettingSpec, raw: str, source: str) -> Any:
    try:
        value = spec.parse(raw)
    except ValueError as error:
        shown = "<hidden>" if spec.secret else repr(raw)
        raise SettingError(f"{source}: invalid value {shown}: {error}") from None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if spec.minimum is not None and value < spec.minimum:
            raise SettingError(f"{source}: must be at least {spec.minimum:g}, got {value}")
        if spec.maximum is not None and value > spec.maximum:
            raise SettingError(f"{source}: must be at most {spec.maximum:g}, got {value}")
    return value


def load_settings(environ: Mapping[str, str], flags: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from raw flag values (by setting name) and an environment."""
    flags = flags or {}
    values: dict[str, Any] = {}
    for spec in SETTINGS:
        if spec.name in flags:
            values[spec.name] = _convert(spec, flags[spec.name], spec.flags[0])
            continue
        for env_name in spec.env_names:
            if env_name in environ:
                values[spec.name] = _convert(spec, environ[env_name], env_name)
                break
    settings = Settings(**values)
    _check_consistency(settings)
    return settings


def _check_consistency(settings: Settings) -> None:
    if settings.push_feedback_url is not None:
        if not settings.push_feedback_url.startswith(("http://", "https://")):
            raise SettingError("RELAY_PUSH_FEEDBACK_URL: expected an http:// or https:// URL")
        if not settings.push_feedback_secret:
            raise SettingError(
                "RELAY_PUSH_FEEDBACK_SECRET: required with RELAY_PUSH_FEEDBACK_URL "
                "(the receiver checks each event's signature with it)"
            )
    pairs: list[tuple[str, str]] = [
        ("attachment_min_size_bytes", "attachment_max_size_bytes"),
        ("backup_min_size_bytes", "backup_max_size_bytes"),
    ]
    for low, high in pairs:
        if getattr(settings, low) > getattr(settings, high):
            raise SettingError(
                f"RELAY_{low.upper()} ({getattr(settings, low)}) must not exceed "
                f"RELAY_{high.upper()} ({getattr(settings, high)})"
            )


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """``RELAY_*`` and ``OBSCURA_*`` variables that match no setting: typos, or settings
    of the reference server this one does not support (such as
    ``OBSCURA_TELEMETRY_OTLP_ENDPOINT``)."""
    known = {name for spec in SETTINGS for name in spec.env_names}
    known |= {"RELAY_TEST_DATABASE_URL"}
    return sorted(name for name in environ if name.startswith(ENV_PREFIXES) and name not in known)
