"""Bounded concurrency for scanners: N workers share one iterator of inputs,
results are yielded as they complete, and cancelling the consumer cancels
every worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


async def bounded(
    items: Iterable[In],
    fn: Callable[[In], Awaitable[Out]],
    concurrency: int,
    progress: Callable[[int, int], None] | None = None,
) -> AsyncIterator[Out]:
    todo = list(items)
    total = len(todo)
    if not total:
        return
    pending = iter(todo)
    results: asyncio.Queue[Out | BaseException] = asyncio.Queue()

    async def worker() -> None:
        try:
            for item in pending:  # shared iterator: each item goes to one worker
                results.put_nowait(await fn(item))
        except Exception as exc:  # a bug, not a network failure: surface it
            results.put_nowait(exc)

    workers = [asyncio.create_task(worker()) for _ in range(min(max(1, concurrency), total))]
    try:
        for done in range(1, total + 1):
            result = await results.get()
            if isinstance(result, BaseException):
                raise result
            if progress:
                progress(done, total)
            yield result
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
