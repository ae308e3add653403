"""The relay's tables (SQLAlchemy Core, one ``MetaData``).

All timestamps are integer Unix microseconds (see :mod:`storage.ids`); all ids are
UUIDs (:class:`storage.types.UUIDType`). Every child of ``devices`` cascades on delete,
so deleting a device removes its keys, tokens, pending messages (to and from it),
push token, backup slot, tickets and idempotency records in one statement.

Secrets are never stored in the clear: refresh tokens and gateway tickets are kept as
SHA-256 hex digests, passwords as argon2id hashes.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from storage.types import UUIDType

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _device_fk() -> ForeignKey:
    return ForeignKey("devices.id", ondelete="CASCADE")


def _user_fk() -> ForeignKey:
    return ForeignKey("users.id", ondelete="CASCADE")


users = Table(
    "users",
    metadata,
    Column("id", UUIDType, primary_key=True),
    Column("username", String(50), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    CheckConstraint("length(username) BETWEEN 3 AND 50", name="username_length"),
    CheckConstraint("username ~ '^[a-z0-9_]{3,50}$'", name="username_format").ddl_if(
        dialect="postgresql"
    ),
)

devices = Table(
    "devices",
    metadata,
    Column("id", UUIDType, primary_key=True),
    Column("user_id", UUIDType, _user_fk(), nullable=False),
    Column("name", String(100), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "user_id", "created_at"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", UUIDType, _user_fk(), nullable=False),
    Column("device_id", UUIDType, _device_fk(), nullable=True),
    Column("expires_at", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "user_id"),
    Index(None, "device_id"),
    Index(None, "expires_at"),
)

identity_keys = Table(
    "identity_keys",
    metadata,
    Column("device_id", UUIDType, _device_fk(), primary_key=True),
    Column("identity_key", LargeBinary(33), nullable=False),
    Column("registration_id", Integer, nullable=False),
)

signed_pre_keys = Table(
    "signed_pre_keys",
    metadata,
    Column("device_id", UUIDType, _device_fk(), nullable=False),
    Column("key_id", Integer, nullable=False),
    Column("public_key", LargeBinary(33), nullable=False),
    Column("signature", LargeBinary(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("device_id", "key_id"),
)

one_time_pre_keys = Table(
    "one_time_pre_keys",
    metadata,
    Column("device_id", UUIDType, _device_fk(), nullable=False),
    Column("key_id", Integer, nullable=False),
    Column("public_key", LargeBinary(33), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("device_id", "key_id"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", UUIDType, primary_key=True),
    Column("sender_id", UUIDType, _user_fk(), nullable=False),
    Column("sender_device_id", UUIDType, _device_fk(), nullable=False),
    Column("device_id", UUIDType, _device_fk(), nullable=False),
    Column("submission_id", UUIDType, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    UniqueConstraint("sender_device_id", "submission_id"),
    # Delivery pages through one device's queue in (created_at, id) order.
    Index(None, "device_id", "created_at", "id"),
    Index(None, "expires_at"),
)

attachments = Table(
    "attachments",
    metadata,
    Column("id", UUIDType, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index(None, "expires_at"),
)

backups = Table(
    "backups",
    metadata,
    Column("device_id", UUIDType, _device_fk(), primary_key=True),
    Column("current_version", Integer, nullable=False, server_default="0"),
    Column("pending_version", Integer, nullable=True),
    Column("state", String(16), nullable=False, server_default="ACTIVE"),
    Column("updated_at", BigInteger, nullable=False),
    Column("pending_at", BigInteger, nullable=True),
    # Blob keys. Every upload writes an object of its own, so an upload that lost its
    # reservation (a stale one taken over) can never overwrite the version that won.
    Column("current_object", String(255), nullable=True),
    Column("pending_object", String(255), nullable=True),
    CheckConstraint("state IN ('ACTIVE', 'UPLOADING')", name="state"),
    Index(None, "state", "pending_at"),
)

push_tokens = Table(
    "push_tokens",
    metadata,
    Column("device_id", UUIDType, _device_fk(), primary_key=True),
    Column("token", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("platform", String(8), nullable=False, server_default="fcm"),
    Column("environment", String(16), nullable=False, server_default="production"),
    # The device's end-to-end push key (Zulip format), sealed with the server key.
    Column("push_key", LargeBinary, nullable=True),
    CheckConstraint("platform IN ('apns', 'fcm', 'hms')", name="platform"),
    CheckConstraint("environment IN ('production', 'development')", name="environment"),
    Index(None, "token"),
)

push_apps = Table(
    "push_apps",
    metadata,
    Column("id", UUIDType, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# One row per configured provider of an app: public settings as JSON, the secret part
# (APNs key, service account, client secret) sealed with the server key.
push_app_credentials = Table(
    "push_app_credentials",
    metadata,
    Column("app_id", UUIDType, ForeignKey("push_apps.id", ondelete="CASCADE"), nullable=False),
    Column("platform", String(8), nullable=False),
    Column("settings", Text, nullable=False),
    Column("secret", LargeBinary, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("app_id", "platform"),
    CheckConstraint("platform IN ('apns', 'fcm', 'hms')", name="platform"),
)

# The durable push queue. A job is due when PENDING and next_attempt_at has passed;
# leasing it pushes next_attempt_at out by the visibility timeout and stamps a lease,
# so a worker that dies mid-send only delays the job. Relay wake-ups carry a device and
# a coalesce key (one PENDING wake-up per device); the token is read when sent.
# Events for the operator's feedback webhook (removed tokens, failed jobs), delivered
# with retries; a row is deleted once delivered or given up.
push_feedback = Table(
    "push_feedback",
    metadata,
    Column("id", UUIDType, primary_key=True),
    Column("body", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False, index=True),
    Column("created_at", BigInteger, nullable=False),
)

push_jobs = Table(
    "push_jobs",
    metadata,
    Column("id", UUIDType, primary_key=True),
    Column("app_id", UUIDType, ForeignKey("push_apps.id", ondelete="CASCADE"), nullable=True),
    Column("device_id", UUIDType, _device_fk(), nullable=True),
    Column("platform", String(8), nullable=True),
    Column("environment", String(16), nullable=True),
    Column("token", Text, nullable=True),
    Column("message", Text, nullable=True),
    Column("coalesce_key", String(100), nullable=True),
    # The PowerAuth campaign a job belongs to (its progress is counted from here).
    Column("campaign_id", Integer, nullable=True),
    Column("state", String(10), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("lease", BigInteger, nullable=True),
    Column("expires_at", BigInteger, nullable=True),
    Column("reason", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    CheckConstraint("state IN ('pending', 'sent', 'failed')", name="state"),
    Index(None, "state", "next_attempt_at"),
    Index(None, "state", "updated_at"),
    Index(None, "campaign_id"),
    Index(
        "uq_push_jobs_pending_coalesce_key",
        "coalesce_key",
        unique=True,
        sqlite_where=text("state = 'pending'"),
        postgresql_where=text("state = 'pending'"),
    ),
)

gateway_tickets = Table(
    "gateway_tickets",
    metadata,
    Column("ticket_hash", String(64), primary_key=True),
    Column("device_id", UUIDType, _device_fk(), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index(None, "expires_at"),
)

idempotency_records = Table(
    "idempotency_records",
    metadata,
    Column("device_id", UUIDType, _device_fk(), nullable=False),
    Column("idempotency_key", UUIDType, nullable=False),
    Column("response", LargeBinary, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("device_id", "idempotency_key"),
    Index(None, "expires_at"),
)

# --- the compatible push APIs (PowerAuth, Zulip, Rocket.Chat) -----------------------------

_FACES = "face IN ('powerauth', 'zulip', 'rocketchat')"


def _app_fk() -> ForeignKey:
    return ForeignKey("push_apps.id", ondelete="CASCADE")


# One registration model under the three faces. ``user_name`` is the user as the faces
# name it: the relay username for Zulip and Rocket.Chat, PowerAuth's ``userId`` string
# (matching a relay username reaches that user's registrations from every face).
# ``face_ref`` is the face's own handle: activation id, push_account_id or document id.
push_registrations = Table(
    "push_registrations",
    metadata,
    Column("id", UUIDType, primary_key=True),
    Column("app_id", UUIDType, _app_fk(), nullable=False),
    Column("user_name", String(255), nullable=False),
    Column("face", String(16), nullable=False),
    Column("face_ref", String(255), nullable=False),
    Column("platform", String(8), nullable=False),
    Column("environment", String(16), nullable=False),
    Column("token", Text, nullable=False),
    # The end-to-end push key (0x31 + 32 bytes), sealed with the server key.
    Column("push_key", LargeBinary, nullable=True),
    Column("active", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    CheckConstraint(_FACES, name="face"),
    CheckConstraint("platform IN ('apns', 'fcm', 'hms')", name="platform"),
    CheckConstraint("environment IN ('production', 'development')", name="environment"),
    UniqueConstraint("face", "user_name", "face_ref"),
    Index(None, "face", "face_ref"),
    Index(None, "app_id", "user_name"),
    Index(None, "app_id", "token"),
    Index(None, "token"),
)

# PowerAuth activations known to this server (status from /push/device/status/update).
powerauth_activations = Table(
    "powerauth_activations",
    metadata,
    Column("activation_id", String(255), primary_key=True),
    Column("user_name", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

push_campaigns = Table(
    "push_campaigns",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("app_id", UUIDType, _app_fk(), nullable=False),
    Column("message", Text, nullable=False),
    Column("sent", Boolean, nullable=False),
    # new -> sending (pages being queued; ``cursor`` is the last token queued) -> sent.
    Column("state", String(10), nullable=False),
    Column("cursor", Text, nullable=True),
    Column("devices", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("sent_at", BigInteger, nullable=True),
    Column("completed_at", BigInteger, nullable=True),
    CheckConstraint("state IN ('new', 'sending', 'sent')", name="state"),
    Index(None, "state"),
)

push_campaign_users = Table(
    "push_campaign_users",
    metadata,
    Column(
        "campaign_id",
        Integer,
        ForeignKey("push_campaigns.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("user_name", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    PrimaryKeyConstraint("campaign_id", "user_name"),
    Index(None, "user_name"),
)

push_inbox = Table(
    "push_inbox",
    metadata,
    Column("id", UUIDType, primary_key=True),
    Column("user_name", String(255), nullable=False),
    Column("type", String(8), nullable=False),
    Column("subject", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("read", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("read_at", BigInteger, nullable=True),
    Index(None, "user_name", "read"),
    Index(None, "user_name", "created_at"),
)

push_inbox_apps = Table(
    "push_inbox_apps",
    metadata,
    Column("inbox_id", UUIDType, ForeignKey("push_inbox.id", ondelete="CASCADE"), nullable=False),
    Column("app_id", UUIDType, _app_fk(), nullable=False),
    PrimaryKeyConstraint("inbox_id", "app_id"),
    Index(None, "app_id"),
)

# Integrator API keys for the PowerAuth face (SHA-256 digests).
api_keys = Table(
    "api_keys",
    metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

# Zulip API keys and Rocket.Chat auth tokens of relay users (SHA-256 digests).
face_tokens = Table(
    "face_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", UUIDType, _user_fk(), nullable=False),
    Column("face", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    CheckConstraint(_FACES, name="face"),
    Index(None, "user_id", "face", "created_at"),
)

# The Zulip bouncer's registration-encryption key pairs (private halves sealed).
bouncer_keys = Table(
    "bouncer_keys",
    metadata,
    Column("public_key", String(64), primary_key=True),
    Column("private_key", LargeBinary, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
