"""Who works on what, now: heartbeats of runners and workers in Redis.

Every runner (a whole-scan runner or one chunk of a fanned-out step) writes
one small key on each progress report, with a time to live: what it runs,
how far it is, and when it last beat. Worker processes write one key each
too. Nothing here is the truth about a scan (the database is); it is what
the workers view, the live panel and `assetmon scans` show, and a key that
is not renewed simply expires. Best effort: Redis being away costs nothing
but this view (and is never retried more than every few seconds).
"""

from __future__ import annotations

import json
import logging
import socket
import time
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

log = logging.getLogger(__name__)

RUNNER = "assetmon:runner:"  # + runner id ("host:pid")
WORKER = "assetmon:worker:"  # + Celery worker name ("celery@host")
TTL = 15  # seconds a beat is shown after its writer went silent
RETRY = 3.0  # seconds between tries while Redis is away
BEAT_INTERVAL = 2.0  # seconds between a worker's beats (worker/heartbeat.py), unless its beat says otherwise
MISSED_BEATS = 2.5  # a worker silent for this many of its intervals is not alive (a beat or two may be late)


@dataclass
class Beat:
    """One runner's last word: scan, step, chunk and progress."""

    runner: str  # "host:pid"
    scan_id: int
    worker: str = ""  # the Celery worker's name; "" in a TUI or CLI thread
    step: str = ""  # the step it runs ("" between steps)
    chunk: int = 0  # 1-based chunk number of the step; 0: the scan's own runner
    chunks: int = 0  # chunks of that step
    done: int = 0
    total: int = 0
    since: float = field(default_factory=time.time)  # when it began this work
    at: float = field(default_factory=time.time)  # this beat

    @property
    def age(self) -> float:
        return max(0.0, time.time() - self.at)

    def doing(self) -> str:
        """`#12 ports chunk 3/8 40/120`: what the workers view and panels show."""
        what = f"#{self.scan_id} {self.step or 'scan'}"
        if self.chunk:
            what += f" chunk {self.chunk}/{self.chunks}"
        if self.total:
            what += f" {self.done:,}/{self.total:,}"
        return what


@dataclass
class WorkerBeat:
    name: str  # "celery@host"
    host: str
    pid: int
    concurrency: int
    version: str
    started: float
    at: float = field(default_factory=time.time)
    interval: float = BEAT_INTERVAL  # how often this worker beats (a beat from before this field: the default)

    @property
    def age(self) -> float:
        return max(0.0, time.time() - self.at)

    def alive(self, max_age: float | None = None, check_pid: bool = True) -> bool:
        """Younger than `max_age` (default: MISSED_BEATS of its interval), and, on
        this host, its process still exists (a kill -9 is seen at once, not
        after the beat ages out)."""
        limit = MISSED_BEATS * max(self.interval, 0.1) if max_age is None else max_age
        if self.age >= limit:
            return False
        if check_pid and self.host == socket.gethostname() and self.pid > 0:
            from .owners import pid_alive

            return pid_alive(self.pid)
        return True


class Fleet:
    """One Redis connection for beats; a no-op without a URL."""

    def __init__(self, redis_url: str, timeout: float = 0.5) -> None:
        self.redis_url = redis_url
        self.timeout = timeout
        self._client: Any = None
        self._next_try = 0.0
        self.down_since: float | None = None  # a time.time(): the last try failed (readers say so)

    def _redis(self) -> Any:
        if not self.redis_url or time.monotonic() < self._next_try:
            return None
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(
                self.redis_url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout
            )
        return self._client

    def _failed(self, exc: Exception) -> None:
        log.debug("fleet: Redis unreachable (%s)", exc)
        self._next_try = time.monotonic() + RETRY
        if self.down_since is None:
            self.down_since = time.time()

    @property
    def down(self) -> bool:
        """The last try failed (and until the next one succeeds): empty reads mean nothing."""
        return self.down_since is not None

    def beat(self, beat: Beat) -> None:
        client = self._redis()
        if client is None:
            return
        beat.at = time.time()
        try:
            client.set(RUNNER + beat.runner, json.dumps(asdict(beat)), ex=TTL)
        except Exception as exc:  # redis raises many kinds when it vanishes
            self._failed(exc)

    def clear(self, runner: str) -> None:
        client = self._redis()
        if client is None:
            return
        try:
            client.delete(RUNNER + runner)
        except Exception as exc:
            self._failed(exc)

    def worker(self, beat: WorkerBeat) -> None:
        client = self._redis()
        if client is None:
            return
        beat.at = time.time()
        try:
            client.set(WORKER + beat.name, json.dumps(asdict(beat)), ex=TTL)
        except Exception as exc:
            self._failed(exc)

    def clear_worker(self, name: str) -> None:
        """A worker going away: its key goes now rather than in TTL seconds."""
        client = self._redis()
        if client is None:
            return
        try:
            client.delete(WORKER + name)
        except Exception as exc:
            self._failed(exc)

    def _read(self, prefix: str) -> list[dict[str, Any]]:
        client = self._redis()
        if client is None:
            return []
        try:
            keys = list(client.scan_iter(match=prefix + "*", count=500))
            raw = client.mget(keys) if keys else []
        except Exception as exc:
            self._failed(exc)
            return []
        self.down_since = None
        out = []
        for value in raw:
            try:
                data = json.loads(value) if value else None
            except ValueError:
                continue
            if isinstance(data, dict):
                out.append(data)
        return out

    def beats(self, scan_id: int | None = None) -> list[Beat]:
        """Runners alive now (newest beat first), of one scan or of all."""
        beats = []
        for data in self._read(RUNNER):
            beat = _typed(Beat, data)
            if beat is not None and (scan_id is None or beat.scan_id == scan_id):
                beats.append(beat)
        return sorted(beats, key=lambda b: (b.scan_id, b.step, b.chunk, b.runner))

    def workers(self) -> list[WorkerBeat]:
        workers = [w for w in (_typed(WorkerBeat, data) for data in self._read(WORKER)) if w is not None]
        return sorted(workers, key=lambda w: w.name)

    def alive_workers(self, max_age: float | None = None, check_pid: bool = True) -> list[WorkerBeat] | None:
        """The workers alive now (see `WorkerBeat.alive`), or None when Redis does
        not answer. One PING and one SCAN/MGET, asked now: no back-off (a health
        check must see Redis come back at once), no Celery."""
        if not self.redis_url:
            return None
        self._next_try = 0.0
        try:
            self._redis().ping()
        except Exception as exc:  # redis raises many kinds (and ValueError for a bad URL)
            self._failed(exc)
            return None
        workers = self.workers()
        if self.down:  # Redis went between the PING and the read
            return None
        return [w for w in workers if w.alive(max_age, check_pid)]


# The field types a beat may hold; anything else in a key (another version, a hostile
# writer) would break `age` or a sort, so such a key is skipped.
_TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float)}
B = TypeVar("B", Beat, WorkerBeat)


def _typed(cls: type[B], data: dict[str, Any]) -> B | None:
    values: dict[str, Any] = {}
    for name, f in cls.__dataclass_fields__.items():
        if name not in data:
            continue
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, _TYPES.get(str(f.type), (object,))):
            return None
        values[name] = value
    try:
        return cls(**values)
    except TypeError:  # a field without default missing
        return None


def workers_line(workers: list[str]) -> str:
    """ "on 2 workers: host:pid, host2:pid" from `Progress.workers` ("host:pid #12 ports …")."""
    names = list(dict.fromkeys(w.split()[0] for w in workers if isinstance(w, str) and w.strip()))
    if not names:
        return ""
    return f"on {len(names)} worker{'s' if len(names) != 1 else ''}: {', '.join(names)}"
