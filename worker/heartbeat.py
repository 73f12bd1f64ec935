"""This worker's heartbeat in Redis (core.fleet), for the workers view.

A daemon thread of the worker's main process (the one that gets `worker_ready`;
pool children never run it) writes a `WorkerBeat` every `INTERVAL` seconds.
A warm or cold shutdown stops it and deletes the key; a killed worker's key
expires after `fleet.TTL` seconds."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from importlib import metadata
from typing import Any

from celery import signals

from assetmon_tui.core.config import get_settings
from assetmon_tui.core.fleet import BEAT_INTERVAL, Fleet, WorkerBeat
from assetmon_tui.store.identity import store_id

log = logging.getLogger(__name__)

INTERVAL = BEAT_INTERVAL  # seconds between beats: well inside fleet.TTL; readers call a worker
# alive while its last beat is younger than fleet.MISSED_BEATS of it (the beat carries it)


class Heartbeat:
    def __init__(self, beat: WorkerBeat, fleet: Fleet) -> None:
        self.beat = beat
        self.fleet = fleet
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="assetmon-heartbeat", daemon=True)

    def start(self) -> None:
        # The first beat before the worker says "ready.": whoever waits for that
        # line (./start.sh, the tests) finds the worker alive at once.
        self.fleet.worker(self.beat)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.beat.interval):
            self.fleet.worker(self.beat)  # best effort: Fleet swallows and backs off

    def stop(self) -> None:
        """Stop beating, then delete the key (after the thread's last write, or it comes back)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2 * self.fleet.timeout + 1)
        self.fleet.clear_worker(self.beat.name)


_current: Heartbeat | None = None


def _version() -> str:
    try:
        return metadata.version("assetmon-tui")
    except metadata.PackageNotFoundError:
        return "unknown"


def start_heartbeat(sender: Any = None, **_: Any) -> None:
    global _current
    if _current is not None:
        return
    controller = getattr(sender, "controller", None)
    concurrency = getattr(controller, "concurrency", None)
    beat = WorkerBeat(
        name=str(getattr(sender, "hostname", "") or socket.gethostname()),
        host=socket.gethostname(),
        pid=os.getpid(),
        concurrency=concurrency if isinstance(concurrency, int) else 0,
        version=_version(),
        started=time.time(),
        interval=INTERVAL,
    )
    _current = Heartbeat(beat, Fleet(get_settings().redis_url, store=store_id()))  # its queue is this store's
    _current.start()
    log.info("heartbeat: %s beats every %.0f s", beat.name, INTERVAL)


def stop_heartbeat(**_: Any) -> None:
    global _current
    current, _current = _current, None
    if current is not None:
        current.stop()


signals.worker_ready.connect(start_heartbeat, weak=False)
signals.worker_shutting_down.connect(stop_heartbeat, weak=False)
signals.worker_shutdown.connect(stop_heartbeat, weak=False)  # also a shutdown not started by a signal
