"""Builds the service objects from settings: the wiring of one process's services."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trio

from providers.client import Endpoints
from providers.h2pool import PoolConfig
from relay.config import SettingError, Settings
from relay.crypto.jwt import JwtCodec
from relay.crypto.passwords import PasswordHashing
from relay.crypto.sealing import Vault, new_key
from relay.events.hub import Hub, LocalHub
from relay.gateway.acks import AckBatcher
from relay.gateway.session import Gateway, GatewayConfig
from relay.observability.metrics import DatabaseMetrics
from relay.services.api_keys import ApiKeyService
from relay.services.attachments import AttachmentService
from relay.services.backups import BackupService
from relay.services.delivery import DeliveryService
from relay.services.devices import DeviceService
from relay.services.face_logins import FaceLoginService
from relay.services.health import HealthService
from relay.services.keys import KeyService
from relay.services.messaging import MessagingService
from relay.services.powerauth import PowerAuth
from relay.services.powerauth.admin import AdminService
from relay.services.powerauth.campaigns import CampaignService
from relay.services.powerauth.devices import PowerAuthDevices
from relay.services.powerauth.inbox import InboxService
from relay.services.powerauth.messages import PowerAuthMessages
from relay.services.push.apps import AppService
from relay.services.push.config import PushConfig
from relay.services.push.feedback import FeedbackConfig
from relay.services.push.retry import RetryPolicy
from relay.services.push.service import PushService
from relay.services.push.wakeups import Wakeups
from relay.services.push_tokens import PushTokenService
from relay.services.registrations import RegistrationSender
from relay.services.rocketchat import RocketChatService
from relay.services.sessions import SessionIssuer, SessionService
from relay.services.shared_limits import SharedRateLimits
from relay.services.tickets import TicketService
from relay.services.uploads import SizeLimits
from relay.services.zulip.bouncer import parse_key_map
from relay.services.zulip.keys import BouncerKeys
from relay.services.zulip.service import ZulipConfig, ZulipService
from storage.blobs import BlobStore, FilesystemBlobStore
from storage.db import Database
from storage.group_commit import GroupCommit
from storage.redis.client import RedisAddress, RedisPool
from storage.s3.store import S3BlobStore, S3Config

# argon2 is CPU-bound and the machines have few cores: more parallel hashes only queue.
_PASSWORD_HASH_THREADS = 2


@dataclass(frozen=True)
class Services:
    """Every service, wired to one database and one hub."""

    db: Database
    sessions: SessionService
    devices: DeviceService
    keys: KeyService
    push_tokens: PushTokenService
    push_apps: AppService
    push: PushService
    wakeups: Wakeups
    messaging: MessagingService
    writes: GroupCommit
    reads: GroupCommit
    tickets: TicketService
    attachments: AttachmentService
    backups: BackupService
    health: HealthService
    hub: Hub
    acks: AckBatcher
    gateway: Gateway
    blobs: BlobStore
    powerauth: PowerAuth
    zulip: ZulipService
    bouncer_keys: BouncerKeys
    rocketchat: RocketChatService
    shared_limits: SharedRateLimits | None
    """The per-IP limits' buckets in Redis when a bus is configured (else per process)."""


def push_config(settings: Settings) -> PushConfig:
    """The push core's configuration from ``settings``."""
    pool = PoolConfig(
        connections=settings.push_connections,
        max_streams_per_connection=settings.push_max_streams_per_connection,
        connect_timeout=float(settings.push_connect_timeout_secs),
        response_timeout=float(settings.push_response_timeout_secs),
        idle_ping_interval=float(settings.push_idle_ping_secs),
    )
    return PushConfig(
        endpoints=Endpoints(
            apns_production=settings.push_apns_production_url,
            apns_development=settings.push_apns_development_url,
            fcm=settings.push_fcm_url,
            fcm_token=settings.push_fcm_token_url,
            hms=settings.push_hms_url,
            hms_token=settings.push_hms_token_url,
        ),
        pool=pool,
        ca_file=settings.push_ca_file,
        concurrency=settings.notifications_worker_concurrency,
        poll_interval=float(settings.notifications_worker_interval_secs),
        # A lease must outlive the slowest send, or a slow job would be sent twice.
        visibility_secs=float(
            max(
                settings.notifications_visibility_timeout_secs,
                settings.push_connect_timeout_secs + settings.push_response_timeout_secs + 5,
            )
        ),
        retry=RetryPolicy(
            base_secs=settings.push_retry_base_ms / 1000,
            cap_secs=float(settings.push_retry_max_secs),
            max_attempts=settings.push_max_attempts,
        ),
        wakeup_app=settings.push_wakeup_app,
        invalid_token_batch=settings.notifications_invalid_token_cleanup_batch_size,
        invalid_token_interval=float(settings.notifications_invalid_token_cleanup_interval_secs),
        retention_secs=settings.push_job_retention_secs,
        feedback=None
        if settings.push_feedback_url is None or settings.push_feedback_secret is None
        else FeedbackConfig(
            settings.push_feedback_url,
            settings.push_feedback_secret.encode(),
            max_attempts=settings.push_feedback_max_attempts,
            max_pending=settings.push_feedback_max_pending,
        ),
    )


def build_services(
    settings: Settings,
    db: Database,
    jwt_secret: bytes,
    blob_root: Path,
    *,
    push_key: bytes | None = None,
    push: PushConfig | None = None,
    hub: Hub | None = None,
) -> Services:
    """Wire the services for ``settings`` (``push_key``: the server key sealing push
    secrets; a random one when not given, as in tests; ``hub``: an in-process one when not
    given)."""
    hub = hub or LocalHub()
    db.observer = DatabaseMetrics()
    blobs = blob_store(settings, blob_root)
    vault = Vault(push_key or new_key())
    wakeups = Wakeups(
        vault,
        delay_secs=settings.notifications_push_delay_secs,
        ttl_secs=settings.fcm_ttl_secs,
        max_attempts=settings.push_max_attempts,
    )
    writes = GroupCommit(db)
    reads = GroupCommit(db, read_only=True)
    delivery = DeliveryService(db, reads, wakeups)
    acks = AckBatcher(
        delivery,
        batch_size=settings.ws_ack_batch_size,
        flush_interval=settings.ws_ack_flush_interval_ms / 1000,
        capacity=settings.ws_ack_buffer_size,
    )
    push_apps = AppService(db, vault)
    issuer = SessionIssuer(
        JwtCodec(jwt_secret),
        token_ttl_secs=settings.auth_token_ttl_secs,
        refresh_ttl_days=settings.auth_refresh_token_ttl_days,
    )
    backups = BackupService(
        db,
        blobs,
        prefix=settings.backup_prefix,
        limits=SizeLimits(
            settings.backup_min_size_bytes, settings.backup_max_size_bytes, "Backup too small"
        ),
        stale_threshold_mins=settings.backup_stale_threshold_mins,
    )
    sessions = SessionService(
        db,
        issuer,
        PasswordHashing(
            memory_kib=settings.auth_password_hash_memory_kib,
            iterations=settings.auth_password_hash_iterations,
        ),
        hash_limiter=trio.CapacityLimiter(_PASSWORD_HASH_THREADS),
    )
    push_service = PushService(db, push_apps, wakeups, push or push_config(settings))
    sender = RegistrationSender(push_service, vault)
    logins = FaceLoginService(db, sessions)
    bouncer_keys = BouncerKeys(db, vault, _bouncer_key_map(settings))
    return Services(
        db=db,
        sessions=sessions,
        devices=DeviceService(
            db,
            issuer,
            backups=backups,
            max_devices_per_user=settings.auth_max_devices_per_user,
            max_pre_keys=settings.pre_keys_max,
        ),
        keys=KeyService(
            db,
            hub,
            max_pre_keys=settings.pre_keys_max,
            refill_threshold=settings.pre_key_refill_threshold,
            wakeups=wakeups,
        ),
        push_tokens=PushTokenService(db, vault),
        push_apps=push_apps,
        push=push_service,
        wakeups=wakeups,
        messaging=MessagingService(
            db,
            hub,
            batch_limit=settings.messaging_send_batch_limit,
            ttl_days=settings.ttl_days,
            idempotency_ttl_secs=settings.messaging_idempotency_ttl_secs,
            wakeups=wakeups,
            writes=writes,
        ),
        writes=writes,
        reads=reads,
        tickets=TicketService(db, ttl_secs=settings.ws_ticket_ttl_secs, wakeups=wakeups),
        attachments=AttachmentService(
            db,
            blobs,
            prefix=settings.attachment_prefix,
            limits=SizeLimits(
                settings.attachment_min_size_bytes,
                settings.attachment_max_size_bytes,
                "Attachment too small",
            ),
            ttl_days=settings.ttl_days,
        ),
        backups=backups,
        health=HealthService(
            db,
            blobs,
            hub,
            db_timeout=settings.health_db_timeout_ms / 1000,
            storage_timeout=settings.health_storage_timeout_ms / 1000,
            pubsub_timeout=settings.health_pubsub_timeout_ms / 1000,
        ),
        hub=hub,
        acks=acks,
        gateway=Gateway(
            delivery,
            hub,
            acks,
            GatewayConfig(
                fetch_batch_size=settings.ws_message_fetch_batch_size,
                max_batch_bytes=settings.ws_max_batch_bytes,
                outbound_buffer_size=settings.ws_outbound_buffer_size,
                outbound_buffer_bytes=settings.ws_outbound_buffer_bytes,
                pre_key_threshold=settings.pre_key_refill_threshold,
                pre_key_debounce=settings.ws_prekey_debounce_interval_ms / 1000,
                # The reference treats an interval of 0 as 1 second.
                ping_interval=max(1, settings.ws_ping_interval_secs),
                ping_timeout=settings.ws_ping_timeout_secs,
            ),
        ),
        blobs=blobs,
        powerauth=_powerauth(settings, db, push_apps, vault, sender),
        zulip=ZulipService(
            db,
            logins,
            push_apps,
            sender,
            vault,
            bouncer_keys,
            ZulipConfig(app=settings.zulip_push_app, realm_name=settings.zulip_realm_name),
        ),
        bouncer_keys=bouncer_keys,
        rocketchat=RocketChatService(
            db, logins, push_apps, vault, default_app=settings.rocketchat_push_app
        ),
        shared_limits=_shared_limits(settings),
    )


def blob_store(settings: Settings, root: Path) -> BlobStore:
    """The configured blob store: files under ``root``, or an S3 bucket."""
    if settings.blob_store == "fs":
        return FilesystemBlobStore(root)
    missing = [
        f"RELAY_STORAGE_{name.upper()}"
        for name in ("bucket", "access_key", "secret_key")
        if not getattr(settings, f"storage_{name}")
    ]
    if missing:
        raise SettingError(f"RELAY_BLOB_STORE=s3 needs {', '.join(missing)}")
    assert settings.storage_bucket is not None
    assert settings.storage_access_key is not None
    assert settings.storage_secret_key is not None
    return S3BlobStore(
        S3Config(
            settings.storage_bucket,
            settings.storage_region,
            settings.storage_access_key,
            settings.storage_secret_key,
            endpoint=settings.storage_endpoint,
            force_path_style=settings.storage_force_path_style,
        )
    )


def _shared_limits(settings: Settings) -> SharedRateLimits | None:
    if settings.pubsub_url is None:
        return None
    return SharedRateLimits(RedisPool(RedisAddress.parse(settings.pubsub_url)))


def _bouncer_key_map(settings: Settings) -> dict[str, str]:
    if settings.push_registration_encryption_keys is None:
        return {}
    try:
        return parse_key_map(settings.push_registration_encryption_keys)
    except ValueError as error:
        raise SettingError(f"RELAY_PUSH_REGISTRATION_ENCRYPTION_KEYS: {error}") from None


def _powerauth(
    settings: Settings, db: Database, apps: AppService, vault: Vault, sender: RegistrationSender
) -> PowerAuth:
    devices = PowerAuthDevices(
        db, apps, vault, multiple_activations=settings.powerauth_multiple_activations
    )
    messages = PowerAuthMessages(db, devices, sender)
    return PowerAuth(
        devices=devices,
        messages=messages,
        campaigns=CampaignService(
            db, devices, messages, sender, page_size=settings.powerauth_campaign_page_size
        ),
        inbox=InboxService(db, apps),
        admin=AdminService(apps, sender.push.queue),
        api_keys=ApiKeyService(db),
        open=settings.powerauth_open,
    )
