"""A running node's signing keys made ahead: each handed out once, refilled behind."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from cryptography.hazmat.primitives.asymmetric import rsa

from veil.adapters.node.key_pool import KeyPool


class Maker:
    def __init__(self) -> None:
        self.made = 0
        self.lock = threading.Lock()

    def __call__(self) -> rsa.RSAPrivateKey:
        with self.lock:
            self.made += 1
        return rsa.generate_private_key(public_exponent=65537, key_size=1024)


def wait_ready(pool: KeyPool, n: int) -> None:
    deadline = time.monotonic() + 20
    while pool.ready() < n:
        assert time.monotonic() < deadline, "the pool did not refill"
        time.sleep(0.01)


def number(key: rsa.RSAPrivateKey) -> int:
    return key.private_numbers().p


def test_a_ready_key_is_taken_at_once_and_the_pool_refills() -> None:
    maker = Maker()
    pool = KeyPool(size=1, generate=maker)
    pool.fill()
    wait_ready(pool, 1)
    assert maker.made == 1
    first = pool.take()  # the ready one: nothing made for it while we waited
    wait_ready(pool, 1)
    assert maker.made == 2
    second = pool.take()
    assert number(first) != number(second)
    pool.close()
    assert pool.ready() == 0
    assert number(pool.take()) not in (number(first), number(second))  # still a key
    assert "ready=" in repr(pool) and str(number(first)) not in repr(pool)


def test_keys_taken_at_once_from_many_threads_are_all_different() -> None:
    pool = KeyPool(size=2, generate=Maker())
    pool.fill()
    wait_ready(pool, 2)
    with ThreadPoolExecutor(8) as threads:
        keys = list(threads.map(lambda _: pool.take(), range(8)))
    assert len({number(k) for k in keys}) == 8
    pool.close()
