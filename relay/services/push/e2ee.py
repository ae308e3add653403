"""End-to-end encrypted notifications: the content is sealed with the device's push key
so that neither the providers nor this server's logs see it."""

from __future__ import annotations

import json
from collections.abc import Mapping

from providers.message import PushMessage
from relay.crypto.sealing import encrypt_push_payload


def plaintext(message: PushMessage) -> bytes:
    """What gets encrypted: the face's own plaintext, or the visible content and data."""
    if message.plaintext is not None:
        return message.plaintext.encode()
    content: dict[str, object] = dict(message.data)
    for key in ("title", "body", "sound", "badge", "category", "thread_id"):
        value = getattr(message, key)
        if value is not None:
            content[key] = value
    return json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()


def encrypted(
    message: PushMessage, push_key: bytes, extra: Mapping[str, str] | None = None
) -> PushMessage:
    """``message`` with its content replaced by ``encrypted_data`` (plus ``extra`` keys,
    such as the id the client uses to pick its key). Size limits are checked by the
    providers' builders, on the encrypted form."""
    data = {**(extra or {}), "encrypted_data": encrypt_push_payload(push_key, plaintext(message))}
    return PushMessage(
        data=data,
        silent=message.silent,
        high_priority=message.high_priority,
        collapse_key=message.collapse_key,
        expires_at=message.expires_at,
        push_type=message.push_type,
        encrypted=True,
    )
