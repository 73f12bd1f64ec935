"""Celery configuration: JSON only, late acks, one task at a time per process."""

from __future__ import annotations

import json
import logging
import time
import uuid

from celery import Celery

from assetmon_tui.core.config import Settings, get_settings

QUEUE = "assetmon"  # + "." + the database's id: installs sharing one Redis never take each other's scans


STORE_RETRY = 5.0  # seconds between tries of a database that is away when a worker starts
log = logging.getLogger(__name__)


def queue_name(wait: bool = False) -> str:
    """The queue of this process's database (its id, made on first use:
    `store.identity`). With `wait` (a worker or beat starting while its
    database is away) it waits for it, saying so once: it cannot know whose
    scans to take before. Without, the database's error is raised (a submit
    falls back to its thread)."""
    from sqlalchemy.exc import OperationalError

    from assetmon_tui.store.errors import explain
    from assetmon_tui.store.identity import store_id

    waiting = False
    while True:
        try:
            name = f"{QUEUE}.{store_id()}"
        except OperationalError as exc:
            if not wait:
                raise
            if not waiting:
                log.warning("%s; waiting for it (every %.0f s) to know whose scans to take", explain(exc), STORE_RETRY)
                waiting = True
            time.sleep(STORE_RETRY)
            continue
        if waiting:
            log.warning("the database answers: taking the scans of queue %s", name)
        return name


def make_app(settings: Settings | None = None, wait_for_store: bool = False) -> Celery:
    settings = settings or get_settings()
    app = Celery(
        "assetmon", broker=settings.redis_url, backend=settings.redis_url, include=["worker.tasks", "worker.heartbeat"]
    )
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=queue_name(wait_for_store),
        task_acks_late=True,  # a scan whose worker dies is redelivered, not lost...
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # ...and never hoarded by a busy worker
        worker_max_memory_per_child=1_000_000,  # KiB: a child that grew past 1 GB is replaced after its scan
        task_track_started=True,
        task_time_limit=settings.scan_time_limit + 60,
        task_soft_time_limit=settings.scan_time_limit,
        result_expires=7 * 24 * 3600,
        broker_transport_options={"visibility_timeout": settings.scan_time_limit + 600},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker outlives a Redis restart
        # Keep running scans through a broker outage: they persist to the DB and
        # the row's atomic claim stops a redelivered copy from running twice.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        broker_connection_timeout=settings.health_timeout,
        redis_socket_connect_timeout=settings.health_timeout,
        redis_socket_timeout=2,  # a dead Redis must not freeze a poll for long
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app


def enqueue_scan(celery: Celery, scan_id: int) -> str:
    """Queue a scan row on Celery; the task id is recorded in the row first, so a
    restarted TUI re-attaches to it. Returns the task id ("": the scan is no
    longer queued, someone runs it already: nothing is sent)."""
    from assetmon_tui.store import repo

    task_id = f"scan-{scan_id}-{uuid.uuid4().hex[:12]}"
    if not repo.set_backend(scan_id, "celery", task_id):
        return ""
    celery.send_task("assetmon.run_scan", args=[scan_id], task_id=task_id)
    return task_id


def enqueue_chunks(celery: Celery, chunk_ids: list[int]) -> None:
    """Send chunks of a fanned-out step as one Celery group (no chord: the step's
    end is noticed by the runner of its last chunk, and a chunk redelivered after
    a worker loss must not count twice). Task ids are recorded first, so a
    reaper can ask the broker whether it still holds them."""
    from celery import group

    from assetmon_tui.store import chunks

    signatures = []
    for chunk_id in chunk_ids:
        task_id = f"chunk-{chunk_id}-{uuid.uuid4().hex[:12]}"
        chunks.set_task(chunk_id, task_id)
        signatures.append(celery.signature("assetmon.run_chunk", args=[chunk_id]).set(task_id=task_id))
    if signatures:
        group(signatures).apply_async()


def held_tasks(celery: Celery) -> set[str] | None:
    """The task ids Redis still holds: messages waiting in the queue, or
    delivered and not yet acknowledged (acks_late keeps them in `unacked` until
    the task ends). None when Redis cannot be asked."""
    import redis

    def task_id(raw: bytes | str) -> str | None:
        try:
            message = json.loads(raw)
        except ValueError:
            return None
        if isinstance(message, list) and message:  # unacked: [message, exchange, routing key]
            message = message[0]
        headers = message.get("headers") if isinstance(message, dict) else None
        value = headers.get("id") if isinstance(headers, dict) else None
        return value if isinstance(value, str) else None

    try:
        client = redis.Redis.from_url(celery.conf.broker_url, socket_timeout=2, socket_connect_timeout=2)
        try:
            match = celery.conf.task_default_queue + "*"  # (and its priority lists)
            queues = [k for k in client.scan_iter(match=match, count=100) if client.type(k) == b"list"]
            raw = [m for key in queues for m in client.lrange(key, 0, -1)] + list(client.hvals("unacked"))
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return None
    return {t for t in map(task_id, raw) if t}


app = make_app(wait_for_store=True)  # the worker's and beat's app
logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request drowns the log
