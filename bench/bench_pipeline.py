"""Whole pipeline on the lab, on a Celery worker: wall time and peak RSS.

    .venv/bin/python -m bench.bench_pipeline [--runs 3] [--labs default,1000] [--modules dns,ports,...]

Per lab size: the lab on loopback, a private redis-server and one Celery
worker subprocess (--concurrency 1: one prefork pool process runs the scan).
Each run scans a fresh project whose targets are the lab's apex domain when
the subdomains module runs (it finds the names), else all the lab's names
(ports: top100 plus the ports the lab bound), submitted with the Dispatcher
like the TUI does. Wall = submit -> final scan row; pipeline = the row's
started_at -> finished_at; per-module times come from the live progress,
polled every 0.1 s. CPU = seconds used by the pool process and by the lab
subprocess (if the lab is near 1 CPU-second per second, the lab is the
bottleneck, not the pipeline). Peak RSS = VmHWM of the pool process, reset to the
current RSS (/proc/PID/clear_refs) before each run, so it is that run's peak.
Run 1 includes the pool process importing the pipeline (a fresh worker).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from assetmon_tui.testing import RedisServer, Worker
from bench.common import (
    cpu_seconds,
    isolated_home,
    lab_env,
    lab_project,
    proc_status_kb,
    reset_peak_rss,
    setenv,
    start_lab,
    table,
    wait_scan,
)


def bench_lab(hosts: int | None, modules: list[str], runs: int) -> list[dict]:
    from assetmon_tui.dispatch import Dispatcher

    lab = start_lab(hosts)
    results = []
    try:
        with isolated_home(**lab_env(lab), ASSETMON_HEALTH_TIMEOUT="0.5") as tmp, RedisServer(tmp) as redis:
            setenv(ASSETMON_REDIS_URL=redis.url)
            with Worker(tmp / "worker.log") as worker:
                dispatcher = Dispatcher()
                if dispatcher.check_health().backend != "celery":
                    raise SystemExit("the worker does not answer")
                (pool,) = worker.pool_pids()
                for run in range(1, runs + 1):
                    project_id, options = lab_project(lab, modules, f"lab-{run}")
                    rss_before = proc_status_kb(pool, "VmRSS")
                    reset = reset_peak_rss(pool)
                    cpu = cpu_seconds(pool), cpu_seconds(lab.pid)
                    started = time.time()
                    scan = dispatcher.submit(project_id, modules, options)
                    steps = module_times(dispatcher, scan.id)
                    row = wait_scan(scan.id)
                    wall = time.time() - started
                    result = {
                        "run": run,
                        "status": row.status,
                        "backend": scan.backend,
                        "wall": wall,
                        "pipeline": (row.finished_at - row.started_at).total_seconds()
                        if row.started_at and row.finished_at
                        else float("nan"),
                        "rss_before": rss_before / 1024,
                        "peak": proc_status_kb(pool, "VmHWM") / 1024,
                        "peak_is_run": reset,
                        "summary": json.loads(row.summary or "{}"),
                        "error": row.error,
                        "cpu_worker": cpu_seconds(pool) - cpu[0],
                        "cpu_lab": cpu_seconds(lab.pid) - cpu[1],
                        "steps": steps,
                    }
                    results.append(result)
                    print(
                        f"  {lab.info['hosts']} vhosts run {run}: {row.status} wall {wall:.2f} s, "
                        f"peak RSS {result['peak']:.0f} MiB (before {result['rss_before']:.0f}), "
                        f"CPU worker {result['cpu_worker']:.1f} s lab {result['cpu_lab']:.1f} s, "
                        f"modules {' '.join(f'{m} {t:.1f} s' for m, t in steps.items())}, "
                        f"found {_found(result['summary'])}" + (f" ERROR {row.error}" if row.error else ""),
                        flush=True,
                    )
                if worker.pool_pids() != [pool]:
                    print("  warning: the pool process changed during the runs")
    finally:
        lab.stop()
    for r in results:
        r["lab"] = f"{lab.info['hosts']} vhosts / {len(lab.info['addresses'])} names"
    return results


def module_times(dispatcher, scan_id: int, interval: float = 0.1) -> dict[str, float]:
    """Seconds each module spent running, from the live progress (polled like the TUI does)."""
    began: dict[str, float] = {}
    took: dict[str, float] = {}
    while True:
        _, progress = dispatcher.poll(scan_id)
        now = time.time()
        for name, mod in progress.modules.items():
            if mod.status != "pending":
                began.setdefault(name, now)
            if mod.status not in ("pending", "running") and name not in took:
                took[name] = now - began[name]
        if not progress.active:  # a final scan's progress has no modules: close the open ones now
            return {name: took.get(name, now - t) for name, t in began.items()}
        time.sleep(interval)


def _found(summary: dict) -> str:
    return " ".join(f"{k} {v}" for k, v in sorted(summary.items()) if k != "elapsed") or "-"


def main() -> None:
    from assetmon_tui.core.modules import NAMES as MODULES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--labs", default="default,1000", help="lab sizes: 'default' or a number of vhosts")
    parser.add_argument("--modules", default=",".join(MODULES), help=f"default: all ({','.join(MODULES)})")
    args = parser.parse_args()
    modules = args.modules.split(",")

    rows = []
    for size in args.labs.split(","):
        hosts = None if size == "default" else int(size)
        print(f"lab {size}, modules {','.join(modules)}", flush=True)
        results = bench_lab(hosts, modules, args.runs)
        ok = [r for r in results if r["status"] == "done"] or results

        def med(get, ok=ok) -> float:
            return statistics.median(get(r) for r in ok)

        steps = " ".join(f"{m} {med(lambda r, m=m: r['steps'].get(m, 0)):.1f}" for m in modules)
        rows.append(
            [
                results[0]["lab"],
                f"{sum(r['status'] == 'done' for r in results)}/{len(results)}",
                f"{med(lambda r: r['wall']):.2f}",
                f"{min(r['wall'] for r in results):.2f}",
                f"{med(lambda r: r['pipeline']):.2f}",
                f"{results[0]['peak']:.0f}",
                f"{med(lambda r: r['peak']):.0f}",
                f"{max(r['peak'] for r in results):.0f}",
                f"{med(lambda r: r['cpu_worker']):.1f} / {med(lambda r: r['cpu_lab']):.1f}",
                steps,
                "/".join(str(results[-1]["summary"].get(k, 0)) for k in ("hosts", "services", "endpoints")),
            ]
        )
    print(f"\nwhole pipeline ({','.join(modules)}) on a Celery worker, {args.runs} runs per lab")
    print(
        table(
            [
                "lab",
                "done",
                "wall p50 s",
                "best s",
                "pipeline p50 s",
                "peak RSS run1 MiB",
                "peak RSS p50 MiB",
                "max MiB",
                "CPU s worker / lab",
                "per module p50 s",
                "hosts/services/endpoints",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
