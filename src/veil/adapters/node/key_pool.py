"""Signing keys made ahead of time, for a long-lived client (the running node).

A new mutable file or directory needs a fresh 2048-bit RSA key, which takes
20-130 ms here and is most of a ``mkdir``'s time. A running node keeps one
key ready: ``take`` hands it over at once and a background thread makes the
next (OpenSSL releases the GIL while it works, so the command goes on
meanwhile). A key is handed out once and only once, and lives in the node's
memory only; a one-shot process does not use a pool (it would make a key it
never uses).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import rsa

from veil.services.mutable.files import generate_key


class KeyPool:
    def __init__(
        self, *, size: int = 1, generate: Callable[[], rsa.RSAPrivateKey] = generate_key
    ) -> None:
        self._size = size
        self._generate = generate
        self._ready: list[rsa.RSAPrivateKey] = []
        self._lock = threading.Lock()
        self._filling: threading.Thread | None = None
        self._closed = False

    def take(self) -> rsa.RSAPrivateKey:
        """A key no one else was given: a ready one if there is one, else a new one
        (either way the pool is refilled in the background). Thread-safe."""
        with self._lock:
            key = self._ready.pop() if self._ready else None
        self.fill()
        return key if key is not None else self._generate()

    def fill(self) -> None:
        """Start making keys until ``size`` are ready (one thread at a time)."""
        with self._lock:
            if self._closed or len(self._ready) >= self._size:
                return
            if self._filling is not None and self._filling.is_alive():
                return
            self._filling = threading.Thread(target=self._fill, name="veil-keys", daemon=True)
            self._filling.start()

    def _fill(self) -> None:
        while True:
            with self._lock:
                if self._closed or len(self._ready) >= self._size:
                    return
            key = self._generate()
            with self._lock:
                if self._closed:
                    return
                self._ready.append(key)

    def ready(self) -> int:
        with self._lock:
            return len(self._ready)

    def close(self) -> None:
        """No more keys; those ready are dropped."""
        with self._lock:
            self._closed = True
            self._ready.clear()
            filling = self._filling
        if filling is not None:
            filling.join()

    def __repr__(self) -> str:
        return f"KeyPool(ready={self.ready()})"  # never a key
