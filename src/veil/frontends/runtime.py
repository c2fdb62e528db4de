"""Running the event loop for a command: uvloop when installed, else asyncio.

``LoopCommand`` is a command whose work is one coroutine: the CLI runs it in
a new event loop, a running node's command server awaits it on its own loop
(``veil.frontends.cli.command_server``).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopCommand:
    def __init__(self, in_loop: Callable[[argparse.Namespace], Awaitable[int]]) -> None:
        self.in_loop = in_loop

    def __call__(self, args: argparse.Namespace) -> int:
        async def once() -> int:
            return await self.in_loop(args)

        return int(run(once()))


def run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        import asyncio

        return asyncio.run(coro)
    return uvloop.run(coro)
