"""A node's TLS certificate does not say when the node was made (issue 10, item 5)."""

from __future__ import annotations

import datetime
import ssl
import time
from pathlib import Path

from cryptography import x509

from veil.adapters.http.tls import (
    NOT_VALID_AFTER,
    NOT_VALID_BEFORE,
    client_context,
    create_identity,
    pin_matches,
    server_context,
    spki_hash_of_pem,
)


def _cert(tmp: Path, name: str) -> x509.Certificate:
    create_identity(tmp / f"{name}.key", tmp / f"{name}.crt")
    return x509.load_pem_x509_certificate((tmp / f"{name}.crt").read_bytes())


def test_validity_is_fixed_whenever_the_identity_is_made(tmp_path: Path) -> None:
    first = _cert(tmp_path, "a")
    time.sleep(1.1)  # certificate times have a resolution of one second
    second = _cert(tmp_path, "b")
    for cert in (first, second):
        assert cert.not_valid_before_utc == NOT_VALID_BEFORE
        assert cert.not_valid_after_utc == NOT_VALID_AFTER
    assert NOT_VALID_BEFORE.date() == datetime.date(2000, 1, 1)
    assert NOT_VALID_AFTER.year == 9999
    # the two identities differ only in key and random serial, never in time
    assert first.serial_number != second.serial_number
    assert first.public_key() != second.public_key()


def test_fixed_dates_still_handshake_and_pin(tmp_path: Path) -> None:
    """Python's TLS server loads the certificate and a pinned client accepts it."""
    create_identity(tmp_path / "k", tmp_path / "c")
    server = server_context(tmp_path / "k", tmp_path / "c")
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_context().wrap_bio(c_in, c_out, server_side=False)
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for side in (client, srv):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    client.do_handshake()
    der = client.getpeercert(binary_form=True)
    assert pin_matches(der, spki_hash_of_pem((tmp_path / "c").read_bytes()))
