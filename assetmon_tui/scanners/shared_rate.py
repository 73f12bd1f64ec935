"""A rate shared by every process that uses the same key, through Redis.

`SharedRate(key, rate, url).share` is this user's part of `rate`: the rate
divided among the users of `key` seen in the last few seconds, whatever
process or machine they run in. A scan's chunks on many workers asking the
same nameserver thus send `rate` queries a second between them, not `rate`
each.

Design: membership, not tokens. Each user keeps an entry in the sorted set
`assetmon:rate:<key>` (a random id per user, scored by Redis's clock, so the
machines' clocks do not matter), refreshed every half second from a daemon
thread by one Lua call that adds it, drops entries unseen for 3 s and counts
the rest. That is two round trips a second per user whatever the rate, off
the event loop, none on the query path; the share becomes the ceiling of
the caller's pace, which spaces queries evenly. A token bucket in Lua would
track demand exactly, but costs a round trip per batch of tokens (batches to
size against the rate, bursts at each batch) and stalls queries whenever
Redis is slow. What membership costs: a user sending less than its share
leaves the rest unused (the sum stays under `rate`: polite, never over), and
for up to a refresh after one joins the others still send their old share
(at most `rate` plus the newcomer's share). One that leaves removes its
entry; one that dies ages out in 3 s.

Without a URL, or while Redis does not answer, the share is the whole rate:
then the scan runs in one process anyway (in a thread when Redis is down).
That is logged once per URL until Redis answers again, and tried again every
5 s. The share is the ceiling of each nameserver's adaptive pace
(udp_resolver._Pace).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

PREFIX = "assetmon:rate:"
INTERVAL = 0.5  # seconds between two refreshes
WINDOW = 3.0  # a user unseen this long is not counted
RETRY = 5.0  # seconds between two tries while Redis does not answer
TIMEOUT = 0.5  # Redis socket timeouts

# KEYS[1] the set, ARGV[1] this user, ARGV[2] the window: the number of users seen within it.
_REFRESH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 1)
return redis.call('ZCARD', KEYS[1])
"""

_silent: set[str] = set()  # URLs whose outage was logged (once until they answer again)
_silent_lock = threading.Lock()


def _where(url: str) -> str:
    """The URL without credentials, for the log."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


class SharedRate:
    """`share`: queries a second this user may send now (`rate` alone, without
    Redis); `members`: the users counted; `shared`: whether the last refresh
    reached Redis. `start()` before use, `close()` after (the entry goes)."""

    def __init__(
        self, key: str, rate: float, url: str = "", *, interval: float = INTERVAL, retry: float = RETRY
    ) -> None:
        self.key = PREFIX + key
        self.rate = max(0.0, rate)
        self.url = url
        self.interval = interval
        self.retry = retry
        self.share = self.rate
        self.members = 1
        self.shared = False
        self.refreshes = 0  # Redis calls made (tests count them)
        self.ready = threading.Event()  # the first refresh is done (or failed)
        self._id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> SharedRate:
        if not self.url or self.rate <= 0:
            self.ready.set()  # nothing to share
            return self
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True, name=f"shared-rate {self.key}")
            self._thread.start()
        return self

    async def started(self, timeout: float = 2 * TIMEOUT + 0.2) -> None:
        """Until the first refresh is done, at most `timeout` (polled: the loop is never blocked)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.ready.is_set() and loop.time() < deadline:
            await asyncio.sleep(0.005)

    def close(self) -> None:
        """Stop refreshing; the thread removes this user's entry (never waited on here)."""
        self._stop.set()

    def _run(self) -> None:
        client: Any = None
        try:
            import redis

            client = redis.Redis.from_url(self.url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)
            refresh = client.register_script(_REFRESH)
            while not self._stop.is_set():
                ok = self._refresh(refresh)
                self.ready.set()
                self._stop.wait(self.interval if ok else self.retry)
            if self.shared:
                with contextlib.suppress(Exception):  # else the entry ages out
                    client.zrem(self.key, self._id)  # the others take its part at their next refresh
        except Exception as exc:  # a URL redis cannot read: the whole rate here
            log.warning("shared rate %s: %s; the whole rate is used in this process", self.key, exc)
        finally:
            self.ready.set()
            if client is not None:
                client.close()

    def _refresh(self, refresh: Callable[..., object]) -> bool:
        self.refreshes += 1
        try:
            count = int(str(refresh(keys=[self.key], args=[self._id, WINDOW])))
        except Exception as exc:  # redis raises many kinds when it is away
            self.shared, self.members, self.share = False, 1, self.rate
            with _silent_lock:
                first = self.url not in _silent
                _silent.add(self.url)
            if first:
                log.warning(
                    "Redis at %s does not answer (%s): each process uses the whole DNS rate"
                    " until it does (tried every %g s)",
                    _where(self.url),
                    exc,
                    self.retry,
                )
            return False
        with _silent_lock:
            back = self.url in _silent
            _silent.discard(self.url)
        if back:
            log.info("Redis at %s answers again: DNS rates are shared", _where(self.url))
        self.members = max(1, count)
        self.share = self.rate / self.members
        self.shared = True
        return True
