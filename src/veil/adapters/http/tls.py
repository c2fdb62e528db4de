"""TLS identities of storage servers, and certificate pinning by SPKI hash (digest §5.2).

A server has a self-signed certificate; clients learn the SHA-256 of its
SubjectPublicKeyInfo from the NURL and accept the connection only if the
presented certificate has that hash: no CA, no hostname check, and expiry does
not matter (as in Tahoe). Keys are ECDSA P-256: Tahoe's client accepts any key
type whose SPKI hash matches, and P-256 keys are made in a millisecond.

Pinning with aiohttp: ``SpkiPin`` is passed as ``ssl=`` (connector or request);
aiohttp then handshakes without verification and calls ``SpkiPin.check`` on
every new connection before any byte of the request is sent (and closes the
connection if the check fails).
"""

from __future__ import annotations

import datetime
import hmac
import os
import ssl
from pathlib import Path
from typing import Any

from aiohttp import Fingerprint
from aiohttp.client_exceptions import ServerFingerprintMismatch
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from veil.errors import ConfigError, FormatError
from veil.formats import base32
from veil.formats.nurl import parse_spki_hash, spki_hash_of_spki_der, tubid_of_cert_der

COMMON_NAME = "newpb_thingy"  # what Tahoe puts in its node certificates
# Fixed validity, the same for every node: a creation time would date the node
# (and link its identities). 9999-12-31 is RFC 5280's "no expiration" value;
# clients pin by SPKI hash and ignore the dates, as Tahoe's do.
NOT_VALID_BEFORE = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
NOT_VALID_AFTER = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)


def _load_pem(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise FormatError("not a PEM certificate") from None


def _load_der(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise FormatError("not a DER certificate") from None


def spki_hash_of_cert(cert: x509.Certificate) -> str:
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return spki_hash_of_spki_der(spki)


def spki_hash_of_der(der_cert: bytes) -> str:
    """SPKI hash text (as in NURLs) of a DER certificate."""
    return spki_hash_of_cert(_load_der(der_cert))


def spki_hash_of_pem(pem: bytes) -> str:
    """SPKI hash text (as in NURLs) of a PEM certificate."""
    return spki_hash_of_cert(_load_pem(pem))


def tubid_of_pem(pem: bytes) -> bytes:
    """The 20-byte 'tubid' Tahoe derives from a certificate: SHA-1 of its DER."""
    return tubid_of_cert_der(_load_pem(pem).public_bytes(serialization.Encoding.DER))


def tubid_text(pem: bytes) -> str:
    """The tubid as it appears in a fURL (32 base32 characters)."""
    return base32.b2a(tubid_of_pem(pem))


def create_identity(key_path: Path, cert_path: Path) -> None:
    """Write a new ECDSA P-256 key (mode 0600) and a self-signed certificate.

    Nothing in the certificate depends on when it was made: the validity dates
    are fixed and the serial number is random.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, COMMON_NAME)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_VALID_BEFORE)
        .not_valid_after(NOT_VALID_AFTER)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = key_path.with_name(key_path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem_key)
    os.replace(tmp, key_path)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def server_context(key_path: Path, cert_path: Path) -> ssl.SSLContext:
    """TLS >= 1.2 server context with this identity; no client certificates asked for."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_NONE
    try:
        ctx.load_cert_chain(cert_path, key_path)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the TLS identity {cert_path} / {key_path}: {exc}",
            hint="delete both files to make a new identity (the NURL will change)",
        ) from None
    return ctx


def client_context() -> ssl.SSLContext:
    """TLS >= 1.2 client context with no CA or host name checks: pin afterwards."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def pin_matches(der_cert: bytes | None, spki_hash: str) -> bool:
    """Constant-time check that a peer certificate has the pinned SPKI hash."""
    try:
        got = spki_hash_of_der(der_cert) if der_cert else ""
    except FormatError:
        got = ""
    return hmac.compare_digest(got.encode("ascii"), spki_hash.encode("ascii"))


class SpkiPin(Fingerprint):
    """An aiohttp ``ssl=`` value accepting only a certificate with this SPKI hash."""

    def __init__(self, spki_hash: str) -> None:
        super().__init__(parse_spki_hash(spki_hash))  # 32 bytes: aiohttp's sha256 slot
        self.spki_hash = spki_hash

    def check(self, transport: Any) -> None:
        sslobj = transport.get_extra_info("ssl_object")
        der = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
        if not pin_matches(der, self.spki_hash):
            peer = transport.get_extra_info("peername") or ("?", 0)
            raise ServerFingerprintMismatch(self.fingerprint, b"", peer[0], peer[1])
