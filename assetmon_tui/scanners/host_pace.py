"""Adaptive politeness per host: how many requests one address gets at once,
cut when it pushes back and given back as it recovers.

A throttling answer (429, 503) halves the host's concurrency and pauses it
(its Retry-After, else an exponential wait, capped); a timeout or a reset
halves it without a pause; every good answer adds one back, up to the
ceiling (additive increase, multiplicative decrease, as TCP does). The
scanner retries a throttled request after the pause, a few times, so a
rate limit is never recorded as the endpoint's state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

THROTTLED = (429, 503)


@dataclass
class _Host:
    limit: int
    inflight: int = 0
    resume_at: float = 0.0  # monotonic time before which nothing is sent
    strikes: int = 0  # throttling answers in a row
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)


class HostPace:
    def __init__(self, ceiling: int = 16, max_pause: float = 30.0) -> None:
        self.ceiling = max(1, ceiling)
        self.max_pause = max_pause
        self._hosts: dict[str, _Host] = {}
        self.backoffs = 0  # cuts, over the run

    def _host(self, key: str) -> _Host:
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _Host(self.ceiling)
        return host

    @asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        """One request's turn at `key` (its pause and concurrency respected)."""
        host = self._host(key)
        async with host.changed:
            while True:
                wait = host.resume_at - time.monotonic()
                if wait <= 0 and host.inflight < host.limit:
                    break
                with suppress(TimeoutError):  # the pause is over: look again
                    await asyncio.wait_for(host.changed.wait(), timeout=wait if wait > 0 else None)
            host.inflight += 1
        try:
            yield
        finally:
            async with host.changed:
                host.inflight -= 1
                host.changed.notify_all()

    async def answered(self, key: str, status: int | None, error: str, retry_after: str = "") -> float:
        """Learn from one answer; returns how long a throttled request should
        wait before it is sent again (0: it was not throttled)."""
        host = self._host(key)
        async with host.changed:
            if status in THROTTLED:
                host.strikes += 1
                self._cut(host)
                pause = _seconds(retry_after)
                if pause is None:
                    pause = min(self.max_pause, 0.5 * 2 ** (host.strikes - 1))
                pause = min(self.max_pause, pause)
                host.resume_at = max(host.resume_at, time.monotonic() + pause)
                host.changed.notify_all()
                return pause
            if error in ("timeout", "reset") or error.startswith("protocol"):
                self._cut(host)
            elif status is not None:
                host.strikes = 0
                if host.limit < self.ceiling:
                    host.limit += 1
                    host.changed.notify_all()
            return 0.0

    def _cut(self, host: _Host) -> None:
        if host.limit > 1:
            self.backoffs += 1
        host.limit = max(1, host.limit // 2)

    def slowed(self) -> int:
        """Hosts running below the ceiling now, or paused."""
        now = time.monotonic()
        return sum(1 for h in self._hosts.values() if h.limit < self.ceiling or h.resume_at > now)


def _seconds(retry_after: str) -> float | None:
    """Retry-After in seconds (an HTTP date is read as "soon": a minute at most is waited anyway)."""
    value = retry_after.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return 5.0
