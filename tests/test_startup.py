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
    # a database already made (a new one is created and stamped by Alembic, which loads every dialect)
    subprocess.run([sys.executable, "-m", "assetmon_tui.cli", "init-db"], env=env, check=True, capture_output=True)
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
    if "DATABASE_URL" not in env:  # on SQLite, PostgreSQL's dialect (~30 ms) is not loaded
        assert "sqlmodel" in first["later"] and "sqlalchemy.dialects.postgresql" not in first["later"]


async def test_the_footer_rebuilds_when_its_keys_change_and_only_then():
    """The footer skips Textual's repeated rebuilds with the same keys (three
    while the dashboard starts) but still shows a key that was switched off."""
    from textual.app import App
    from textual.widgets import Footer

    from assetmon_tui.ui.widgets import KeyFooter, footer

    class Keys(App[None]):
        BINDINGS = [("x", "noop", "Xray"), ("q", "quit", "Quit")]
        allowed = True

        def compose(self):
            yield footer()

        def check_action(self, action, parameters):
            return self.allowed or action != "noop"  # False: hidden from the footer

        def action_noop(self) -> None:
            pass

    rebuilds = 0
    original = Footer.recompose

    async def counted(self) -> None:
        nonlocal rebuilds
        rebuilds += 1
        await original(self)

    app = Keys()
    Footer.recompose = counted  # KeyFooter calls it only when it rebuilds
    try:
        async with app.run_test() as pilot:
            bar = app.query_one(KeyFooter)

            def shown() -> str:
                return " ".join(str(key.render()) for key in bar.children)

            for _ in range(20):
                await pilot.pause(0.05)
                if "Xray" in shown():
                    break
            assert "Xray" in shown() and "Quit" in shown()
            before = rebuilds
            for _ in range(3):
                app.screen.refresh_bindings()
                await pilot.pause(0.05)
            assert rebuilds == before  # the same keys: no rebuild
            app.allowed = False
            app.screen.refresh_bindings()
            for _ in range(20):
                await pilot.pause(0.05)
                if "Xray" not in shown():
                    break
            assert "Xray" not in shown() and "Quit" in shown() and rebuilds == before + 1
    finally:
        Footer.recompose = original
