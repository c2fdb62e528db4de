"""AES-128-CTR over a whole file as one keystream (digest §3.2).

Byte ``o`` of the file uses counter block ``o // 16`` (big-endian 128-bit)
at offset ``o % 16``, so any range can be decrypted on its own.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes


def ctr_cipher(key: bytes, offset: int = 0) -> CipherContext:
    """A keystream context positioned at file byte ``offset``.

    ``update`` both encrypts and decrypts (CTR is symmetric).
    """
    block, skip = divmod(offset, 16)
    ctx = Cipher(algorithms.AES(key), modes.CTR(block.to_bytes(16, "big"))).encryptor()
    if skip:
        ctx.update(b"\x00" * skip)
    return ctx
