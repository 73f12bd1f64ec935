"""The app: the dispatcher, the current project and the header (backend health,
new events count) that every screen shares, the global keys, and the command
palette. The dashboard is its default screen. Blocking work (database, Redis,
Celery) runs in thread workers; only textual and our light core are imported
before the first frame."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App, SystemCommand
from textual.screen import Screen

from .actions import Action, actions_of, bindings, palette_commands
from .screens.dashboard import POLL_INTERVAL, DashboardScreen

if TYPE_CHECKING:
    from ..dispatch import Dispatcher

__all__ = ["POLL_INTERVAL", "AssetMonApp"]

SCHEDULE_INTERVAL = 5.0  # thread backend only: due schedules are started from here (Celery has beat)
# ./start.sh sets it (a time.time()) when it has just started a worker: until then, or until the
# worker answers, the header says so and no scan runs in this process by mistake.
WORKER_STARTING = "ASSETMON_WORKER_STARTING"

log = logging.getLogger(__name__)


class AssetMonApp(App[None]):
    TITLE = "AssetMon"
    CSS_PATH = "app.tcss"
    ACTIONS = [  # on every screen (a screen's own key wins)
        Action("events", "e", "Events", "Change events", "What changed between scans, across projects"),
        Action("help", "question_mark,f1", "Help", "Help: keys", "Every key of this screen and the global ones"),
        Action("check_health", title="Check backend", help="Ask Redis and the workers again now"),
        Action("quit", "q", "Quit", palette=False),  # Textual's palette has its own Quit
        # Ctrl+C quits (the README and every terminal user's reflex), even in an input
        Action("quit", "ctrl+c,ctrl+q", "Quit", palette=False, footer=False, priority=True),
    ]
    BINDINGS = bindings(ACTIONS)

    def __init__(self) -> None:
        super().__init__()
        self.dispatcher: Dispatcher | None = None  # created off the UI thread (it imports the store)
        self.project_id: int | None = None
        self.project_names: dict[int, str] = {}
        self.dashboard = DashboardScreen()
        self._scheduling = False
        self._health_detail = "checking backend…"
        self._new_events = 0
        self._quitting = False  # the quit confirmation is open

    def get_default_screen(self) -> Screen[None]:
        return self.dashboard

    def on_unmount(self) -> None:
        if not self.is_headless:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if self.dispatcher is not None:
            self.dispatcher.shutdown()  # local scans die with this process: say so in their rows

    def on_mount(self) -> None:
        if not self.is_headless:  # the terminal hung up (an SSH session dropped): end as q would, but ask nothing
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.exit)
        self.sub_title = self._health_detail
        # the complete first frame first (the footer mounts its keys a refresh later): the start-up
        # thread imports the store, and while it holds the GIL no frame is drawn
        self.call_after_refresh(self.call_after_refresh, self._start)

    # -- start-up and background loops --------------------------------------------

    @work(thread=True, exit_on_error=False)
    def _start(self) -> None:
        from ..dispatch import Dispatcher

        dispatcher = Dispatcher()
        self.call_from_thread(self.dashboard.store_ready)
        until = _worker_starting()
        if until > time.time():
            self._health_detail = "starting worker…"
            self.call_from_thread(self._show_header)
            self._health_detail = dispatcher.wait_for_worker(until).detail
        dispatcher.reap()
        self.dispatcher = dispatcher
        self.call_from_thread(self._after_start)
        self.action_check_health()

    def _after_start(self) -> None:
        assert self.dispatcher is not None
        self.dashboard.backend_ready()
        self.set_interval(self.dispatcher.settings.health_interval, self.action_check_health)
        self.set_interval(SCHEDULE_INTERVAL, self._schedule_tick)

    @work(thread=True, exclusive=True, group="health", exit_on_error=False)
    def action_check_health(self) -> None:
        if self.dispatcher is None:
            return
        health = self.dispatcher.check_health()
        self._health_detail = health.detail
        self._count_events()

    @work(thread=True, exclusive=True, group="event-count", exit_on_error=False)
    def refresh_event_count(self) -> None:
        """Re-read the unacknowledged events count for the header (after acknowledging, or a scan ended)."""
        self._count_events()

    def _count_events(self) -> None:
        try:
            from ..store import event_log

            self._new_events = event_log.unacknowledged_count()
        except Exception:
            log.exception("counting new events failed")
        self.call_from_thread(self._show_header)

    def _show_header(self) -> None:
        n = self._new_events
        # the count first: a narrow header cuts the end of the line
        self.sub_title = (f"{n} new event{'s' if n != 1 else ''} · " if n else "") + self._health_detail

    def _schedule_tick(self) -> None:
        if not self._scheduling and self.dispatcher is not None:
            self._scheduling = True
            self._run_schedules()

    @work(thread=True, group="schedules", exit_on_error=False)
    def _run_schedules(self) -> None:
        """With the thread backend nobody else starts due schedules (beat does with Celery)."""
        try:
            if self.dispatcher is None or self.dispatcher.health().backend != "thread":
                return
            from ..schedule import run_due

            started = run_due(self.dispatcher.submit)
            if started:  # the dashboard's poll shows the new scans
                names = ", ".join(self.project_names.get(p, str(p)) for p in started)
                self.call_from_thread(self.notify, f"Scheduled scan started: {names}", markup=False)
        except Exception:
            log.exception("running due schedules failed")
        finally:
            self._scheduling = False

    # -- global actions and the palette --------------------------------------------------

    def action_help(self) -> None:
        from .screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    async def action_quit(self) -> None:
        """Quit at once, unless this process runs scans in its threads: those
        end with it, so one confirmation names them (a second q or Ctrl+C: yes)."""
        if self._quitting or self.dispatcher is None:
            self.exit()
            return
        local = self.dispatcher.local_scans()
        if not local:
            self.exit()
            return
        from .screens.forms import ConfirmForm

        names = ", ".join(f"#{s.id} ({self.project_names.get(s.project_id, s.project_id)})" for s in local)
        question = f"Quit and cancel the scan{'s' if len(local) > 1 else ''} running in this TUI: {names}?"
        self._quitting = True
        self.push_screen(ConfirmForm(question), self._quit_answer)

    def _quit_answer(self, yes: bool | None) -> None:
        self._quitting = False
        if yes:
            self.exit()

    def action_events(self) -> None:
        from .screens.events import EventsScreen

        if not isinstance(self.screen, EventsScreen):
            self.push_screen(EventsScreen())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "events":
            from .screens.events import EventsScreen

            return not isinstance(self.screen, EventsScreen)  # hidden from its own footer
        return True

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Textual's own commands, then the actions of the screen the palette was opened on, then the global ones."""
        # Textual's "Keys" panel is replaced by our help screen (it lists every key, and Escape closes it)
        yield from (c for c in super().get_system_commands(screen) if c.title != "Keys")
        yield from palette_commands(self, actions_of(screen), screen)
        yield from palette_commands(self, actions_of(self), self)


def _worker_starting() -> float:
    try:
        return float(os.environ.get(WORKER_STARTING, "0"))
    except ValueError:
        return 0.0
