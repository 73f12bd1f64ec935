"""UI responsiveness: keypress -> handled in the real App, idle vs while heavy
thread-backend scans run in the same process.

    .venv/bin/python -m bench.bench_responsiveness [--presses 150] [--hosts 1000] [--slow-callbacks]

ASSETMON_BACKEND=thread. The busy load is two scans submitted through
`app.dispatcher.submit` and run by the ThreadBackend in the app's process:
a full 65,535-port scan of 127.0.0.1, and the lab with 1,000 vhosts (dns,
ports limited to the lab's own ports, http); a scan that ends is submitted
again so the load lasts until all presses are done.

Keys are sent like a terminal's input thread does: from a separate thread,
through the driver's `process_message` (thread-safe post into the app's
loop), so a press waits if the UI loop is busy. The focused widget is the
targets table (the lab's 1,115 names); presses alternate down/up. `action_cursor_down`
/`_up` of that table are wrapped: "handled" = the action ran, "painted" = the
next screen refresh after it (`call_after_refresh`). A press is counted as
busy only if a scan thread was alive both when it was sent and handled.
--slow-callbacks turns on asyncio debug and lists UI-loop callbacks > 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import threading
import time

from bench.common import isolated_home, lab_env, lab_ports, lab_targets, start_lab, summary, table, verdict

TARGET_P95 = 0.100
TIMEOUT = 10.0  # a press not handled by then counts as lost


class Presser:
    """Sends keys from its own thread and pairs each with its handling."""

    def __init__(self, app, table_widget) -> None:
        self.app, self.table = app, table_widget
        self.handled = threading.Event()
        self.t_handled = self.t_painted = 0.0
        for name in ("action_cursor_down", "action_cursor_up"):
            setattr(table_widget, name, self._wrap(getattr(table_widget, name)))

    def _wrap(self, action):
        def wrapped():
            self.t_handled = time.perf_counter()
            action()
            self.app.call_after_refresh(self._painted)

        return wrapped

    def _painted(self) -> None:
        self.t_painted = time.perf_counter()
        self.handled.set()

    def press(self, key: str) -> tuple[float, float] | None:
        """(handled, painted) latency in seconds, or None when lost."""
        from textual import events

        self.handled.clear()
        sent = time.perf_counter()
        self.app._driver.process_message(events.Key(key, None))
        if not self.handled.wait(TIMEOUT):
            return None
        return self.t_handled - sent, self.t_painted - sent

    def run(self, count: int, busy=None) -> dict:
        """`count` presses 30-120 ms apart (counted only while busy() when given)."""
        handled, painted, lost, skipped = [], [], 0, 0
        keys = ["down", "up"]
        while len(handled) < count:
            time.sleep(random.uniform(0.03, 0.12))
            was_busy = busy() if busy else True
            result = self.press(keys[(len(handled) + skipped) % 2])
            if result is None:
                lost += 1
            elif busy and not (was_busy and busy()):
                skipped += 1
            else:
                handled.append(result[0])
                painted.append(result[1])
        return {"handled": handled, "painted": painted, "lost": lost}


async def run_app(args, projects: dict[str, tuple[int, list[str], dict]], rows: int) -> dict:
    from textual.widgets import DataTable

    from assetmon_tui.core.progress import FINAL_STATES
    from assetmon_tui.store import repo
    from assetmon_tui.ui.app import AssetMonApp

    app = AssetMonApp()
    figures: dict[str, dict] = {}
    async with app.run_test(size=(160, 48)):
        loop = asyncio.get_running_loop()
        if args.slow_callbacks:
            loop.set_debug(True)
            loop.slow_callback_duration = 0.020
        targets = app.query_one("#targets", DataTable)
        while not (app.dispatcher and targets.row_count >= rows):
            await asyncio.sleep(0.05)
        targets.focus()
        await asyncio.sleep(0.5)
        presser = Presser(app, targets)

        figures["idle"] = await asyncio.to_thread(presser.run, args.presses)

        scans: dict[str, int] = {}
        started = time.time()
        scan_counts = dict.fromkeys(projects, 0)

        def busy() -> bool:
            return any(app.dispatcher.thread.running(sid) for sid in scans.values())

        async def keep_busy() -> None:
            while True:
                for name, (project_id, modules, options) in projects.items():
                    if name not in scans or not app.dispatcher.thread.running(scans[name]):
                        scan = await asyncio.to_thread(app.dispatcher.submit, project_id, modules, options)
                        scans[name] = scan.id
                        scan_counts[name] += 1
                await asyncio.sleep(0.2)

        feeder = asyncio.ensure_future(keep_busy())
        while len(scans) < len(projects) or not busy():
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # past the scans' start-up
        figures["busy"] = await asyncio.to_thread(presser.run, args.presses, busy)
        feeder.cancel()
        figures["busy"]["seconds"] = time.time() - started
        figures["busy"]["scans"] = scan_counts
        for sid in scans.values():
            await asyncio.to_thread(app.dispatcher.cancel, sid)
        for sid in scans.values():
            for _ in range(200):
                if (await asyncio.to_thread(repo.get_scan, sid)).status in FINAL_STATES:
                    break
                await asyncio.sleep(0.1)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=150)
    parser.add_argument("--hosts", type=int, default=1000, help="lab web vhosts")
    parser.add_argument("--lab-modules", default="dns,ports,http")
    parser.add_argument("--slow-callbacks", action="store_true", help="log UI-loop callbacks slower than 20 ms")
    args = parser.parse_args()
    if args.slow_callbacks:
        logging.basicConfig(level=logging.WARNING, format="%(message)s")

    lab = start_lab(args.hosts)
    try:
        with isolated_home(**lab_env(lab), ASSETMON_BACKEND="thread"):
            from assetmon_tui.store import repo

            lab_project = repo.create_project("a-lab")
            repo.add_targets(lab_project.id, lab_targets(lab, args.lab_modules.split(",")))
            local = repo.create_project("b-localhost")
            repo.add_targets(local.id, ["127.0.0.1"])
            projects = {
                "lab": (
                    lab_project.id,
                    args.lab_modules.split(","),
                    {"nameservers": [lab.info["nameserver"]], "ports": lab_ports(lab, base="")},
                ),
                "localhost": (local.id, ["ports"], {"ports": "all"}),
            }
            rows = len(repo.list_targets(lab_project.id))
            figures = asyncio.run(run_app(args, projects, rows))
    finally:
        lab.stop()

    busy = figures["busy"]
    print(
        f"\nkeypress latency in AssetMonApp (thread backend), {args.presses} presses each, focus: targets table "
        f"({rows} rows)"
    )
    print(
        f"busy = full port scan of 127.0.0.1 + lab {lab.info['hosts']} vhosts ({args.lab_modules}); "
        f"scans submitted: {busy['scans']}, over {busy['seconds']:.0f} s"
    )
    rows = []
    for phase in ("idle", "busy"):
        for key in ("handled", "painted"):
            s = summary(figures[phase][key])
            rows.append(
                [
                    phase,
                    key,
                    s["n"],
                    f"{s['p50'] * 1000:.1f}",
                    f"{s['p95'] * 1000:.1f}",
                    f"{s['max'] * 1000:.1f}",
                    figures[phase]["lost"],
                ]
            )
    print(table(["scan", "key press ->", "presses", "p50 ms", "p95 ms", "max ms", "lost"], rows))
    p95 = summary(busy["handled"])["p95"]
    print(f"\ntarget p95 <= {TARGET_P95 * 1000:.0f} ms while scanning: {verdict(p95 <= TARGET_P95)}")


if __name__ == "__main__":
    main()
