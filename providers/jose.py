"""Compact JWS with ES256 (APNs provider tokens) and RS256 (Google service accounts).

Only what the providers need: sign a header and claims, and, for the emulators, verify
a token against a known public key. ES256 signatures are JOSE's raw ``r || s`` (64
bytes), not DER. The tests cross-check both directions against PyJWT.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from providers.errors import CredentialError

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
_P256_BYTES = 32


class InvalidJws(Exception):
    """The token is malformed or its signature does not verify."""


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JOSE writes it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url; :class:`InvalidJws` on bad input."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as error:
        raise InvalidJws("bad base64url") from error


def load_private_key(pem: bytes) -> PrivateKey:
    """Load a PEM private key (an APNs ``.p8`` file or a service account's key)."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise CredentialError("not a PEM private key") from error
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise CredentialError("an EC key must be on P-256")
        return key
    if isinstance(key, rsa.RSAPrivateKey):
        return key
    raise CredentialError("the key must be P-256 (APNs) or RSA (service account)")


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def sign(header: dict[str, Any], claims: dict[str, Any], key: PrivateKey) -> str:
    """A compact JWS over ``claims``; ``alg`` follows the key type (ES256 or RS256)."""
    alg = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256"
    signing_input = f"{b64url(_json({**header, 'alg': alg}))}.{b64url(_json(claims))}"
    data = signing_input.encode("ascii")
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")
    else:
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, read without checking anything (to pick the key by ``kid``)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidJws("not a compact JWS")
    return _object(b64url_decode(parts[0]))


def _object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as error:
        raise InvalidJws("bad JSON") from error
    if not isinstance(value, dict):
        raise InvalidJws("not a JSON object")
    return value


def verify(token: str, key: PublicKey) -> dict[str, Any]:
    """The claims of ``token`` if its signature verifies with ``key``."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidJws("not a compact JWS")
    header = _object(b64url_decode(parts[0]))
    data = f"{parts[0]}.{parts[1]}".encode("ascii")
    signature = b64url_decode(parts[2])
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if header.get("alg") != "ES256" or len(signature) != 2 * _P256_BYTES:
                raise InvalidJws("expected ES256")
            r = int.from_bytes(signature[:_P256_BYTES], "big")
            s = int.from_bytes(signature[_P256_BYTES:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        else:
            if header.get("alg") != "RS256":
                raise InvalidJws("expected RS256")
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as error:
        raise InvalidJws("bad signature") from error
    return _object(b64url_decode(parts[1]))
