"""Digests of provider credentials, so that caches see a rotated credential at once.

Token caches are keyed by an identity that survives rotation (an FCM service account's
``client_email``, an HMS ``app_id``, an APNs team and key id) and remember the digest of
the credentials they were filled from: a new key or secret for the same identity has
another digest and replaces the cached token on the next send.
"""

from __future__ import annotations

import hashlib


def credential_digest(*parts: str | bytes | None) -> bytes:
    """SHA-256 over ``parts``, each length-prefixed (so no two lists share a digest)."""
    digest = hashlib.sha256()
    for part in parts:
        data = b"\xff" if part is None else part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.digest()
