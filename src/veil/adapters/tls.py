"""TLS identities of storage servers, and certificate pinning by SPKI hash (digest §5.2).

A server has a self-signed certificate; clients learn the SHA-256 of its
SubjectPublicKeyInfo from the NURL and accept the connection only if the
presented certificate has that hash: no CA, no hostname check, no SNI, and
expiry does not matter (as in Tahoe).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
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

from veil.formats import base32


def spki_hash_of_der(der_cert: bytes) -> str:
    cert = x509.load_der_x509_certificate(der_cert)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.urlsafe_b64encode(hashlib.sha256(spki).digest()).decode().rstrip("=")


def spki_hash_of_pem(pem: bytes) -> str:
    cert = x509.load_pem_x509_certificate(pem)
    return spki_hash_of_der(cert.public_bytes(serialization.Encoding.DER))


def tubid_of_pem(pem: bytes) -> bytes:
    """The 20-byte 'tubid' Tahoe derives from a certificate: SHA-1 of its DER."""
    cert = x509.load_pem_x509_certificate(pem)
    return hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).digest()


def tubid_text(pem: bytes) -> str:
    return base32.b2a(tubid_of_pem(pem))


def create_identity(key_path: Path, cert_path: Path) -> None:
    """Write a new ECDSA P-256 key (0600) and a self-signed certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "newpb_thingy")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem_key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def server_context(key_path: Path, cert_path: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_path, key_path)
    return ctx


class SpkiPin(Fingerprint):
    """An aiohttp ``ssl=`` value that accepts only a certificate with this SPKI hash."""

    def __init__(self, spki_hash: str) -> None:
        raw = base64.urlsafe_b64decode(spki_hash + "=" * (-len(spki_hash) % 4))
        super().__init__(raw)
        self.spki_hash = spki_hash

    def check(self, transport: Any) -> None:
        sslobj = transport.get_extra_info("ssl_object")
        der = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
        got = spki_hash_of_der(der) if der else ""
        if not hmac.compare_digest(got.encode(), self.spki_hash.encode()):
            peer = transport.get_extra_info("peername") or ("?", 0)
            raise ServerFingerprintMismatch(self.fingerprint, got.encode(), peer[0], peer[1])
