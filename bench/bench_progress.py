"""Progress latency: a worker's update_state -> on screen in the real App.

    .venv/bin/python -m bench.bench_progress [--scans 3] [--hosts N] [--modules dns,ports,http]
                                             [--backend celery|thread]

A private redis-server and a Celery worker subprocess (--concurrency 1), the
lab on loopback, and AssetMonApp headless under `run_test()`. Scans of the
lab are submitted through `app.dispatcher.submit`. `ScanPanel.show` is
wrapped: the first time a panel shows a given progress (its `updated_at`,
stamped by the pipeline right before `update_state`), we note the time of the
show() call and, via `call_after_refresh`, the time the refreshed screen was
composed ("painted"). Latency = that time - updated_at (same host clock).
Updates superseded before the app polled them are never shown (by design the
panel shows the latest state), so they have no latency and are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from assetmon_tui.testing import RedisServer, Worker
from bench.common import (
    isolated_home,
    lab_env,
    lab_project,
    setenv,
    start_lab,
    summary,
    table,
    verdict,
)

TARGET_P95 = 0.5


async def run_app(project_id: int, options: dict, modules: list[str], scans: int, backend: str, timeout: float) -> dict:
    from assetmon_tui.core.progress import FINAL_STATES
    from assetmon_tui.store import repo
    from assetmon_tui.ui.app import POLL_INTERVAL, AssetMonApp
    from assetmon_tui.ui.panels import ScanPanel

    shown: list[float] = []
    painted: list[float] = []
    seen: set[tuple[int, float]] = set()
    original = ScanPanel.show

    def show(panel: ScanPanel, progress, backend_name: str) -> None:
        original(panel, progress, backend_name)
        key = (panel.scan_id, progress.updated_at)
        if progress.modules and key not in seen:  # pipeline progress (not a placeholder), first time shown
            seen.add(key)
            shown.append(time.time() - progress.updated_at)
            panel.app.call_after_refresh(lambda: painted.append(time.time() - key[1]))

    ScanPanel.show = show
    app = AssetMonApp()
    durations = []
    try:
        async with app.run_test(size=(140, 45)):
            want = "Celery" if backend == "celery" else "Local thread"
            while not (app.dispatcher and str(app.sub_title).startswith(want)):
                await asyncio.sleep(0.05)
            for _ in range(scans):
                scan = await asyncio.to_thread(app.dispatcher.submit, project_id, modules, options)
                if scan.backend != backend:
                    raise SystemExit(f"scan ran on {scan.backend}, not {backend}")
                deadline = time.time() + timeout
                while (row := await asyncio.to_thread(repo.get_scan, scan.id)).status not in FINAL_STATES:
                    if time.time() > deadline:
                        await asyncio.to_thread(app.dispatcher.cancel, scan.id)
                        raise SystemExit(f"scan {scan.id} still running after {timeout:.0f} s: cancelled")
                    await asyncio.sleep(0.1)
                durations.append((row.finished_at - row.started_at).total_seconds())
                await asyncio.sleep(2 * POLL_INTERVAL)  # let the panel go away
    finally:
        ScanPanel.show = original
    return {"shown": shown, "painted": painted, "durations": durations, "poll": POLL_INTERVAL}


def main() -> None:
    from assetmon_tui.core.modules import NAMES as MODULES
    from assetmon_tui.pipeline import REPORT_EVERY

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=3)
    parser.add_argument("--hosts", type=int, default=None, help="lab web vhosts (default: the lab's)")
    parser.add_argument("--modules", default=",".join(MODULES))
    parser.add_argument("--backend", choices=("celery", "thread"), default="celery")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per scan before giving up")
    args = parser.parse_args()
    modules = args.modules.split(",")

    lab = start_lab(args.hosts)
    try:
        with isolated_home(**lab_env(lab), ASSETMON_HEALTH_TIMEOUT="0.5") as tmp, RedisServer(tmp) as redis:
            setenv(ASSETMON_REDIS_URL=redis.url)
            if args.backend == "thread":
                setenv(ASSETMON_BACKEND="thread")
                figures = _measure(lab, args, modules)
            else:
                with Worker(tmp / "worker.log"):
                    figures = _measure(lab, args, modules)
    finally:
        lab.stop()

    print(
        f"\nprogress latency, {args.backend} backend, {args.scans} scans of the lab "
        f"({lab.info['hosts']} vhosts, {len(lab.info['addresses'])} names), modules {','.join(modules)}; "
        f"pipeline reports every {REPORT_EVERY} s, the app polls every {figures['poll']} s"
    )
    print(f"scan durations: {', '.join(f'{d:.1f} s' for d in figures['durations'])}")
    rows = []
    for key, label in (("shown", "update_state -> ScanPanel.show"), ("painted", "update_state -> screen refreshed")):
        s = summary(figures[key])
        rows.append([label, s["n"], f"{s['p50'] * 1000:.0f}", f"{s['p95'] * 1000:.0f}", f"{s['max'] * 1000:.0f}"])
    print(table(["latency", "updates", "p50 ms", "p95 ms", "max ms"], rows))
    p95 = summary(figures["painted"])["p95"]
    print(f"\ntarget p95 <= {TARGET_P95 * 1000:.0f} ms: {verdict(p95 <= TARGET_P95)}")


def _measure(lab, args, modules) -> dict:
    project_id, options = lab_project(lab, modules)
    return asyncio.run(run_app(project_id, options, modules, args.scans, args.backend, args.timeout))


if __name__ == "__main__":
    main()
