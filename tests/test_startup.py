"""The start-up promise: the dashboard's first frame imports neither Celery nor
the pipeline (nor the dispatcher, which a thread worker imports after it).
Checked in a fresh interpreter: other tests' imports would pollute sys.modules."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = textwrap.dedent(
    """
    import asyncio, json, sys

    from textual.app import App

    from assetmon_tui.ui.app import AssetMonApp

    first: dict = {}
    original = App._display

    def display(self, screen, renderable):
        if renderable is not None and not first:
            first["modules"] = sorted(sys.modules)
            first["screen"] = type(screen).__name__
        original(self, screen, renderable)

    App._display = display

    async def main():
        app = AssetMonApp()
        async with app.run_test(size=(80, 24)) as pilot:
            for _ in range(400):
                if first:
                    break
                await pilot.pause(0.01)
            for _ in range(400):  # and the start-up worker does import the dispatcher afterwards
                if app.dispatcher is not None:
                    break
                await pilot.pause(0.025)
            first["later"] = sorted(sys.modules)
        print(json.dumps(first))

    asyncio.run(main())
    """
)


def test_first_frame_imports_no_celery_pipeline_or_dispatcher(home):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, ASSETMON_REDIS_URL=f"redis://127.0.0.1:{port}/0")  # nothing listens
    env.pop("ASSETMON_BACKEND", None)  # the default: Redis is probed, Celery would be used
    out = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    first = json.loads(out.stdout.strip().splitlines()[-1])
    assert first["screen"] == "DashboardScreen"
    heavy = [
        m
        for m in first["modules"]
        if m.split(".")[0] in ("celery", "kombu", "redis")
        or m.startswith(("assetmon_tui.pipeline", "assetmon_tui.dispatch", "worker", "sqlalchemy", "sqlmodel"))
    ]
    assert heavy == [], heavy
    assert "assetmon_tui.dispatch" in first["later"]  # the promise is about order: it is imported, just later
    assert not any(m.startswith(("celery", "assetmon_tui.pipeline")) for m in first["later"])
