"""Celery configuration: JSON only, late acks, one task at a time per process."""

from __future__ import annotations

from celery import Celery

from assetmon_tui.core.config import get_settings

QUEUE = "assetmon"


def make_app() -> Celery:
    settings = get_settings()
    app = Celery("assetmon", broker=settings.redis_url, backend=settings.redis_url, include=["worker.tasks"])
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=QUEUE,
        task_acks_late=True,  # a scan whose worker dies is redelivered, not lost...
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # ...and never hoarded by a busy worker
        task_track_started=True,
        task_time_limit=settings.scan_time_limit + 60,
        task_soft_time_limit=settings.scan_time_limit,
        result_expires=7 * 24 * 3600,
        broker_transport_options={"visibility_timeout": settings.scan_time_limit + 600},
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=settings.health_timeout,
        redis_socket_connect_timeout=settings.health_timeout,
        redis_socket_timeout=2,  # a dead Redis must not freeze a poll for long
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app


app = make_app()
