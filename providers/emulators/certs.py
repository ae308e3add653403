"""Self-signed TLS certificates for the emulators (loopback names, plus the address an
emulator is bound to)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_VALID_DAYS = 30


@dataclass(frozen=True)
class CertificatePaths:
    """A certificate (also the trust anchor clients load) and its private key."""

    cert: Path
    key: Path


def names_of(paths: CertificatePaths) -> set[str]:
    """The host names and addresses the certificate at ``paths`` is valid for."""
    certificate = x509.load_pem_x509_certificate(paths.cert.read_bytes())
    alternative = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return {
        *alternative.value.get_values_for_type(x509.DNSName),
        *(str(address) for address in alternative.value.get_values_for_type(x509.IPAddress)),
    }


def create_self_signed(directory: Path, *, host: str = "127.0.0.1") -> CertificatePaths:
    """Write ``emulator-cert.pem`` / ``emulator-key.pem`` for localhost, 127.0.0.1, ::1
    and ``host`` (an address, such as a test network's)."""
    names: list[x509.GeneralName] = []
    for entry in dict.fromkeys(("localhost", "127.0.0.1", "::1", host)):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(entry)))
        except ValueError:
            names.append(x509.DNSName(entry))
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay push emulator")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=_VALID_DAYS))
        .add_extension(
            x509.SubjectAlternativeName(names),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    paths = CertificatePaths(directory / "emulator-cert.pem", directory / "emulator-key.pem")
    paths.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    paths.key.chmod(0o600)
    return paths


def server_ssl_context(paths: CertificatePaths) -> ssl.SSLContext:
    """A TLS server context offering only ALPN ``h2``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(paths.cert, paths.key)
    context.set_alpn_protocols(["h2"])
    return context
