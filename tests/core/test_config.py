"""Settings: Obscura defaults, RELAY_/OBSCURA_ names, flags, precedence, validation."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from relay.cli import parser as _parser
from relay.config import (
    SETTINGS,
    SettingError,
    Settings,
    _convert,
    load_settings,
    unknown_variables,
)

# obscura-contract.md §9 and the reference's config.rs: suffix -> default.
OBSCURA_DEFAULTS = {
    "TTL_DAYS": 30,
    "AUTH_TOKEN_TTL_SECS": 900,
    "AUTH_REFRESH_TOKEN_TTL_DAYS": 30,
    "AUTH_MAX_DEVICES_PER_USER": 10,
    "AUTH_REFRESH_TOKEN_CLEANUP_INTERVAL_SECS": 86400,
    "RATE_LIMIT_PER_SECOND": 10,
    "RATE_LIMIT_BURST": 20,
    "RATE_LIMIT_AUTH_PER_SECOND": 1,
    "RATE_LIMIT_AUTH_BURST": 3,
    "MESSAGING_SEND_BATCH_LIMIT": 100,
    "MESSAGING_IDEMPOTENCY_TTL_SECS": 86400,
    "MESSAGING_INBOX_MAX_SIZE": 1000,
    "MESSAGING_CLEANUP_INTERVAL_SECS": 300,
    "MESSAGING_BATCH_LIMIT": 50,
    "PRE_KEY_REFILL_THRESHOLD": 20,
    "PRE_KEYS_MAX": 100,
    "WS_TICKET_TTL_SECS": 30,
    "WS_MESSAGE_FETCH_BATCH_SIZE": 50,
    "WS_MAX_BATCH_BYTES": 8388608,
    "WS_ACK_BATCH_SIZE": 100,
    "WS_ACK_FLUSH_INTERVAL_MS": 500,
    "WS_ACK_BUFFER_SIZE": 1000,
    "WS_OUTBOUND_BUFFER_SIZE": 32,
    "WS_PING_INTERVAL_SECS": 30,
    "WS_PING_TIMEOUT_SECS": 10,
    "WS_PREKEY_DEBOUNCE_INTERVAL_MS": 500,
    "ATTACHMENT_MIN_SIZE_BYTES": 1,
    "ATTACHMENT_MAX_SIZE_BYTES": 52428800,
    "ATTACHMENT_TIMEOUT_SECS": 120,
    "ATTACHMENT_PREFIX": "attachments/",
    "ATTACHMENT_CLEANUP_INTERVAL_SECS": 3600,
    "ATTACHMENT_CLEANUP_BATCH_SIZE": 100,
    "BACKUP_MIN_SIZE_BYTES": 32,
    "BACKUP_MAX_SIZE_BYTES": 2097152,
    "BACKUP_TIMEOUT_SECS": 60,
    "BACKUP_PREFIX": "backups/",
    "BACKUP_STALE_THRESHOLD_MINS": 30,
    "BACKUP_CLEANUP_INTERVAL_SECS": 300,
    "NOTIFICATIONS_PUSH_DELAY_SECS": 2,
    "NOTIFICATIONS_VISIBILITY_TIMEOUT_SECS": 30,
    "NOTIFICATIONS_WORKER_INTERVAL_SECS": 1,
    "NOTIFICATIONS_WORKER_CONCURRENCY": 100,
    "NOTIFICATIONS_INVALID_TOKEN_CLEANUP_INTERVAL_SECS": 5,
    "NOTIFICATIONS_INVALID_TOKEN_CLEANUP_BATCH_SIZE": 50,
    "SERVER_PORT": 3000,
    "SERVER_MGMT_PORT": 9090,
    "SERVER_SHUTDOWN_TIMEOUT_SECS": 5,
    "SERVER_REQUEST_TIMEOUT_SECS": 30,
    "SERVER_GLOBAL_TIMEOUT_SECS": 600,
    "DATABASE_MAX_CONNECTIONS": 20,
    "DATABASE_ACQUIRE_TIMEOUT_SECS": 3,
    "DATABASE_MAX_LIFETIME_SECS": 1800,
    "HEALTH_DB_TIMEOUT_MS": 2000,
    "HEALTH_STORAGE_TIMEOUT_MS": 2000,
    "HEALTH_PUBSUB_TIMEOUT_MS": 2000,
    "FCM_TTL_SECS": 604800,
}

SPECS = {spec.suffix: spec for spec in SETTINGS}


@pytest.mark.parametrize(("suffix", "default"), sorted(OBSCURA_DEFAULTS.items()))
def test_every_obscura_setting_exists_with_its_default(suffix: str, default: object) -> None:
    assert SPECS[suffix].default == default
    assert getattr(Settings(), suffix.lower()) == default


def test_trusted_proxies_default_adds_ipv6_loopback() -> None:
    networks = Settings().server_trusted_proxies
    assert [str(n) for n in networks] == [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "127.0.0.1/32",
        "::1/128",
    ]


def test_embedded_defaults() -> None:
    settings = Settings()
    assert settings.server_host == "127.0.0.1"
    assert settings.database_url is None
    assert settings.data_dir == "./relay-data"
    assert settings.auth_jwt_secret is None
    assert not settings.is_production


@pytest.mark.parametrize("prefix", ["RELAY_", "OBSCURA_"])
def test_both_environment_prefixes_are_read(prefix: str) -> None:
    settings = load_settings({f"{prefix}SERVER_PORT": "4000", f"{prefix}WS_ACK_BATCH_SIZE": "7"})
    assert settings.server_port == 4000
    assert settings.ws_ack_batch_size == 7


def test_precedence_is_flag_then_relay_then_obscura() -> None:
    env = {"RELAY_RATE_LIMIT_BURST": "5", "OBSCURA_RATE_LIMIT_BURST": "6"}
    assert load_settings(env).rate_limit_burst == 5
    assert load_settings({"OBSCURA_RATE_LIMIT_BURST": "6"}).rate_limit_burst == 6
    assert load_settings(env, {"rate_limit_burst": "9"}).rate_limit_burst == 9


def test_every_setting_is_a_serve_flag() -> None:
    parser = _parser()
    for spec in SETTINGS:
        args = vars(parser.parse_args(["serve", spec.flags[0], "1"]))
        assert spec.name in args


@pytest.mark.parametrize(
    ("flag", "name"),
    [
        ("--db-url", "database_url"),
        ("--mgmt-port", "server_mgmt_port"),
        ("--trusted-proxies", "server_trusted_proxies"),
        ("--auth-rate-limit-per-second", "rate_limit_auth_per_second"),
        ("--auth-rate-limit-burst", "rate_limit_auth_burst"),
        ("--db-max-connections", "database_max_connections"),
    ],
)
def test_reference_flag_spellings_are_accepted(flag: str, name: str) -> None:
    args = vars(_parser().parse_args(["serve", flag, "42"]))
    assert args[name] == "42"


def test_boolean_flags_need_no_value() -> None:
    args = vars(_parser().parse_args(["serve", "--access-log", "--auto-migrate", "false"]))
    settings = load_settings({}, args)
    assert settings.access_log is True
    assert settings.auto_migrate is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RELAY_SERVER_PORT": "abc"}, "RELAY_SERVER_PORT: invalid value 'abc'"),
        ({"OBSCURA_SERVER_PORT": "70000"}, "OBSCURA_SERVER_PORT: must be at most 65535"),
        ({"RELAY_RATE_LIMIT_BURST": "0"}, "RELAY_RATE_LIMIT_BURST: must be at least 1"),
        ({"RELAY_ACCESS_LOG": "maybe"}, "RELAY_ACCESS_LOG: invalid value"),
        ({"RELAY_ENV": "staging"}, "RELAY_ENV: invalid value 'staging'"),
        ({"RELAY_SERVER_TRUSTED_PROXIES": "10.0.0.0/33"}, "RELAY_SERVER_TRUSTED_PROXIES"),
        # The URL may hold a password: it is never echoed.
        ({"OBSCURA_PUBSUB_URL": "redis://:pw@cache/x"}, "invalid value <hidden>: the database"),
        ({"RELAY_PUBSUB_URL": "http://cache"}, "RELAY_PUBSUB_URL: invalid value <hidden>"),
        ({"RELAY_BLOB_STORE": "gcs"}, "RELAY_BLOB_STORE: invalid value 'gcs'"),
        (
            {"RELAY_BACKUP_MIN_SIZE_BYTES": "10", "RELAY_BACKUP_MAX_SIZE_BYTES": "5"},
            "RELAY_BACKUP_MIN_SIZE_BYTES (10) must not exceed",
        ),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(env)


def _reject(text: str) -> str:
    raise ValueError("unparseable")


def test_secret_values_are_not_echoed() -> None:
    spec = dataclasses.replace(SPECS["AUTH_JWT_SECRET"], parse=_reject)
    assert spec.secret
    with pytest.raises(SettingError) as caught:
        _convert(spec, "hunter2", "RELAY_AUTH_JWT_SECRET")
    assert "hunter2" not in str(caught.value)
    assert "<hidden>" in str(caught.value)


def test_trusted_proxy_list_parses_cidrs_and_bare_addresses() -> None:
    settings = load_settings({"RELAY_SERVER_TRUSTED_PROXIES": " 10.1.2.3/8, 2001:db8::1 ,"})
    assert settings.server_trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::1/128"),
    )


def test_unknown_relay_variables_are_reported() -> None:
    env = {"RELAY_SERVER_PROT": "1", "RELAY_SERVER_PORT": "1", "OBSCURA_STORAGE_BUCKET": "b"}
    assert unknown_variables(env) == ["RELAY_SERVER_PROT"]
