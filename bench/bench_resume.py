"""What a crash costs: an undisturbed lab scan vs the same scan whose worker's
whole process group is killed halfway, with a new worker started at once.

    .venv/bin/python -m bench.bench_resume [--runs 3] [--hosts 300] [--modules subdomains,dns,ports,http]

Per run, on a private redis-server and the lab (a subprocess), with one
Celery worker (--concurrency 1):
- undisturbed: submit -> final row, wall time;
- killed: submit, wait until half the undisturbed wall time has passed, kill
  -9 the worker's process group (nobody else reaps), start a new worker at
  once, wait for the final row. The new worker's reaper sees the dead pid and
  requeues the scan; the run resumes from its checkpoint.
The target: killed <= undisturbed * 1.1 + lease_timeout (the time a reaper
on another machine would wait); the worker start-up is part of the cost.
Both scans must end done with the same inventory.
"""

from __future__ import annotations

import argparse
import statistics
import time

from assetmon_tui.testing import RedisServer, Worker
from bench.common import isolated_home, lab_env, lab_project, setenv, start_lab, table, verdict, wait_scan


def inventory(project_id: int) -> dict[str, set[object]]:
    from assetmon_tui.store import repo

    return {
        "hosts": {h.name for h in repo.hosts(project_id)},
        "services": {(name, s.port) for s, name in repo.services(project_id)},
        "http": {(e.url, e.status) for e, _ in repo.endpoints(project_id)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hosts", type=int, default=300, help="lab virtual hosts")
    parser.add_argument("--modules", default="subdomains,dns,ports,http")
    args = parser.parse_args()
    modules = args.modules.split(",")

    from assetmon_tui.core.config import get_settings
    from assetmon_tui.dispatch import Dispatcher
    from assetmon_tui.store import leases

    lab = start_lab(args.hosts)
    rows = []
    try:
        with isolated_home(**lab_env(lab), ASSETMON_HEALTH_TIMEOUT="0.5") as tmp, RedisServer(tmp) as redis:
            setenv(ASSETMON_REDIS_URL=redis.url)
            lease = get_settings().lease_timeout
            for run in range(1, args.runs + 1):
                with Worker(tmp / "worker.log") as worker:
                    dispatcher = Dispatcher()
                    assert dispatcher.check_health().backend == "celery"
                    project_a, options = lab_project(lab, modules, f"plain-{run}")
                    started = time.time()
                    plain = wait_scan(dispatcher.submit(project_a, modules, options).id)
                    undisturbed = time.time() - started
                project_b, options = lab_project(lab, modules, f"killed-{run}")
                worker = Worker(tmp / "worker.log").start()
                started = time.time()
                scan = dispatcher.submit(project_b, modules, options)
                time.sleep(undisturbed / 2)  # the crash happens at a moment, not at a condition
                step = next((n for n, m in dispatcher.poll(scan.id)[1].modules.items() if m.status == "running"), "-")
                worker.kill()
                with Worker(tmp / "worker.log"):
                    killed_row = wait_scan(scan.id)
                killed = time.time() - started
                same = inventory(project_a) == inventory(project_b)
                attempts = len(leases.attempts(scan.id))
                rows.append((undisturbed, killed, step, plain.status, killed_row.status, same, attempts))
                print(
                    f"run {run}: undisturbed {undisturbed:.1f} s, killed during {step} and resumed {killed:.1f} s "
                    f"({killed_row.status}, {attempts} attempts, same inventory: {same})",
                    flush=True,
                )
    finally:
        lab.stop()
    plain_s = statistics.median(r[0] for r in rows)
    killed_s = statistics.median(r[1] for r in rows)
    target = plain_s * 1.1 + lease
    ok = killed_s <= target and all(r[3] == r[4] == "done" and r[5] for r in rows)
    print()
    print(
        table(
            ["scan", "median wall", "target", "verdict"],
            [
                [f"undisturbed ({lab.info['hosts']} vhosts)", f"{plain_s:.1f} s", "", ""],
                [
                    "worker killed halfway, new worker at once",
                    f"{killed_s:.1f} s",
                    f"<= {target:.1f} s (1.1x + lease {lease:.0f} s)",
                    verdict(ok),
                ],
            ],
        )
    )
    print(f"repeated work and restart: {killed_s - plain_s:+.1f} s over the undisturbed scan")


if __name__ == "__main__":
    main()
