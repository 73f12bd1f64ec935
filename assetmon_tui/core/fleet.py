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
import math
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
    store: str = ""  # the id of the database it works for ("": a beat from before the field)
    gauges: dict[str, int] = field(default_factory=dict)  # its rates now (progress.GAUGES): DNS pace, hosts slowed

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
    store: str = ""  # the id of the database whose queue it takes ("": a beat from before the field)

    @property
    def age(self) -> float:
        return max(0.0, time.time() - self.at)

    @property
    def older(self) -> bool:
        """A worker of a release before store ids: it consumes the old shared
        queue, never this install's, so it is shown (to be restarted) but is no
        worker to send a scan to."""
        return not self.store

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
    """One Redis connection for beats; a no-op without a URL. With `store` (the
    database's id, `store.identity`), the beats it writes carry it and the ones
    it reads are that database's only: installs sharing one Redis do not see
    each other's workers ("": a database without an id yet, which no worker
    took: none is its). A beat without a store (an older release's) is kept:
    a runner's still says its scan is alive, a worker's is shown `older`;
    None: every beat."""

    def __init__(self, redis_url: str, timeout: float = 0.5, store: str | None = None) -> None:
        self.redis_url = redis_url
        self.timeout = timeout
        self.store = store
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

    def _ours(self, beat: Beat | WorkerBeat) -> bool:
        """A beat of this Fleet's database (or of one that does not say)."""
        return self.store is None or not beat.store or beat.store == self.store

    @property
    def down(self) -> bool:
        """The last try failed (and until the next one succeeds): empty reads mean nothing."""
        return self.down_since is not None

    def beat(self, beat: Beat) -> None:
        client = self._redis()
        if client is None:
            return
        beat.at, beat.store = time.time(), self.store or beat.store
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
        beat.at, beat.store = time.time(), self.store or beat.store
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
        """Runners alive now (newest beat first), of one scan or of all: a
        runner on this host whose process is gone is left out at once."""
        from .owners import is_dead

        beats = []
        for data in self._read(RUNNER):
            beat = _typed(Beat, data)
            if beat is None or not self._ours(beat):
                continue
            if (scan_id is None or beat.scan_id == scan_id) and not is_dead(beat.runner):
                beats.append(beat)
        return sorted(beats, key=lambda b: (b.scan_id, b.step, b.chunk, b.runner))

    def workers(self, live: bool = False) -> list[WorkerBeat]:
        """The workers' beats in Redis; with `live`, less those on this host
        whose process is gone (a kill -9 leaves its key until the TTL)."""
        workers = [
            w for w in (_typed(WorkerBeat, data) for data in self._read(WORKER)) if w is not None and self._ours(w)
        ]
        if live:
            workers = [w for w in workers if w.alive(max_age=math.inf)]
        return sorted(workers, key=lambda w: w.name)

    def alive_workers(self, max_age: float | None = None, check_pid: bool = True) -> list[WorkerBeat] | None:
        """The workers alive now (see `WorkerBeat.alive`), or None when Redis does
        not answer. One PING and one SCAN/MGET, asked now: no back-off (a health
        check must see Redis come back at once), no Celery. Until this Fleet has
        a redis-py client, over a plain socket (`_Resp`): importing redis-py
        costs more than the whole check."""
        if not self.redis_url:
            return None
        self._next_try = 0.0
        if self._client is None and (raw := _Resp.read(self.redis_url, self.timeout, WORKER)) is not NotImplemented:
            if raw is None:
                self._failed(ConnectionError("no answer"))
                return None
            self.down_since = None
            workers = sorted((w for w in map(_worker, raw) if w is not None and self._ours(w)), key=lambda w: w.name)
        else:
            try:
                self._redis().ping()
            except Exception as exc:  # redis raises many kinds (and ValueError for a bad URL)
                self._failed(exc)
                return None
            workers = self.workers()
            if self.down:  # Redis went between the PING and the read
                return None
        return [w for w in workers if w.alive(max_age, check_pid)]


def _worker(value: bytes | None) -> WorkerBeat | None:
    try:
        data = json.loads(value) if value else None
    except ValueError:
        return None
    return _typed(WorkerBeat, data) if isinstance(data, dict) else None


class _Resp:
    """PING, SCAN and MGET in RESP2 over one socket, for URLs of the plain kinds
    (redis://, rediss://, unix://; user, password, db); anything else
    (other query options) is NotImplemented and goes to redis-py."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rb")

    @classmethod
    def read(cls, url: str, timeout: float, prefix: str) -> list[bytes | None] | None | Any:
        """The values of the keys under `prefix`; None: Redis did not answer
        (or refused us); NotImplemented: a URL this does not handle."""
        from urllib.parse import parse_qs, unquote, urlsplit

        try:
            parts = urlsplit(url)
            query = parse_qs(parts.query)
            db = query.pop("db", [""])[0] or (parts.path.strip("/") if parts.scheme != "unix" else "") or "0"
            if parts.scheme not in ("redis", "rediss", "unix") or query or not db.isdigit():
                return NotImplemented
            host, port = parts.hostname or "localhost", parts.port or 6379
        except ValueError:
            return NotImplemented
        try:
            if parts.scheme == "unix":
                sock = socket.socket(socket.AF_UNIX)
                sock.settimeout(timeout)
                sock.connect(parts.path)
            else:
                sock = socket.create_connection((host, port), timeout=timeout)
            if parts.scheme == "rediss":
                import ssl

                try:
                    sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
                except OSError:
                    sock.close()
                    raise
            with sock:
                resp = cls(sock)
                if parts.password is not None:
                    user = [unquote(parts.username)] if parts.username else []
                    resp.call("AUTH", *user, unquote(parts.password))
                if db != "0":
                    resp.call("SELECT", db)
                resp.call("PING")
                keys: list[bytes] = []
                cursor = b"0"
                while True:
                    cursor, batch = resp.call("SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000")
                    keys += batch
                    if cursor == b"0":
                        break
                return resp.call("MGET", *keys) if keys else []
        except (OSError, ValueError, TypeError) as exc:  # refused, timed out, an error reply, a garbled one
            log.debug("fleet: Redis read failed (%s)", exc)
            return None

    def call(self, *args: str | bytes) -> Any:
        out = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg if isinstance(arg, bytes) else arg.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(out))
        return self._reply()

    def _reply(self) -> Any:
        line = self.file.readline()
        if not line.endswith(b"\r\n"):
            raise ValueError("connection closed")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise ValueError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self.file.read(size + 2)
            if len(data) != size + 2:
                raise ValueError("connection closed")
            return data[:-2]
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self._reply() for _ in range(count)]
        raise ValueError(f"unexpected reply {line[:20]!r}")


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
        values[name] = _gauges(value) if name == "gauges" else value
    try:
        return cls(**values)
    except TypeError:  # a field without default missing
        return None


def _gauges(value: object) -> dict[str, int]:
    """Another writer may put anything there: only the known rates, as integers."""
    from .progress import GAUGES

    if not isinstance(value, dict):
        return {}
    return {
        k: v
        for k, v in value.items()
        if k in GAUGES and type(v) is int and 0 <= v < 10**9  # (not bool, not huge)
    }


def workers_line(workers: list[str]) -> str:
    """ "on 2 workers: host:pid, host2:pid" from `Progress.workers` ("host:pid #12 ports …")."""
    names = list(dict.fromkeys(w.split()[0] for w in workers if isinstance(w, str) and w.strip()))
    if not names:
        return ""
    return f"on {len(names)} worker{'s' if len(names) != 1 else ''}: {', '.join(names)}"
