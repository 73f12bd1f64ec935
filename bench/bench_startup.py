"""Start-up: process start -> first painted dashboard, AssetMonApp vs a bare
Textual app (Header, DataTable, Footer), in fresh processes, runs alternating.

    .venv/bin/python -m bench.bench_startup [--runs 10] [--imports]

Each run spawns `python -m bench.bench_startup --child ours|bare T0` where T0 is
time.time() just before the spawn. The child runs the app with
`run(headless=True)`; `App._display` is wrapped so the first frame the
compositor hands to the driver is also rendered to terminal bytes (what a
real terminal would receive), then the child prints the elapsed time since T0
and exits at once (os._exit: shut-down is not part of start-up). "complete"
is the first frame with the Footer's key labels (Textual mounts them a frame
or two after the first frame). CPU columns: CPU time used until "complete"
by the main (UI) thread and by the whole process; steadier than wall time
on a loaded machine.
--imports (automatic when the 1.3x target is missed) lists the modules only
our app imports, by cumulative import time (python -X importtime).

    .venv/bin/python -m bench.bench_startup --commands [--runs 10] [--worker]

--commands times whole CLI commands instead, as a user waits for them (fork
to exit, fresh processes, runs alternating, median): `assetmon health`, a
1-port `assetmon scan 127.0.0.1 --modules ports --ports 22`, and `nmap -p1
127.0.0.1` in the same run. A private redis-server answers (without one,
`health` would only time a refused connection); --worker also starts a
Celery worker, so health says Celery and the scan runs on the worker.
Targets: health < 0.3 s, the scan < 0.5 s (issue 15).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from assetmon_tui.testing import free_port
from bench.common import PY, ROOT, table, verdict

TARGET = 1.3  # issue 15
SIZE = (120, 40)
HEALTH_TARGET, SCAN_TARGET = 0.3, 0.5  # seconds, whole commands (issue 15)


def bare_app_class():
    from textual.app import App
    from textual.widgets import DataTable, Footer, Header

    class Bare(App):
        TITLE = "Bare"
        BINDINGS = [("q", "quit", "Quit")]

        def compose(self):
            yield Header()
            yield DataTable(cursor_type="row")
            yield Footer()

        def on_mount(self) -> None:
            self.query_one(DataTable).add_columns("#", "status", "modules")

    return Bare


def child(kind: str, t0: float) -> None:
    if kind.startswith("ours"):
        from assetmon_tui.ui.app import AssetMonApp as app_class

        if kind == "ours-nostart":  # diagnosis: without the start-up thread worker (DB, Redis)
            app_class._start = lambda self: None
    else:
        app_class = bare_app_class()
    from textual._compositor import CompositorUpdate
    from textual.app import App

    imported = time.time() - t0
    original = App._display
    seen: dict[str, float] = {}

    def display(self, screen, renderable) -> None:
        original(self, screen, renderable)
        if renderable is None or self._batch_count:
            return
        if isinstance(renderable, CompositorUpdate):
            frame = renderable.render_segments(self.console)
        else:
            frame = self.console._render_buffer(self.console.render(renderable))
        now = time.time() - t0
        seen.setdefault("first_frame", now)
        # The Footer mounts its key labels a frame or two later: the dashboard
        # is complete when they are on screen.
        if "Quit" in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", frame) or now - seen["first_frame"] > 5:
            print(
                json.dumps(
                    {
                        "imported": imported,
                        **seen,
                        "complete": now,
                        "cpu": time.process_time(),
                        "main_cpu": time.thread_time(),
                    }
                ),
                flush=True,
            )
            os._exit(0)

    App._display = display
    app_class().run(headless=True, size=SIZE)
    os._exit(1)  # exited without painting


def spawn(kind: str, env: dict) -> dict:
    t0 = time.time()
    out = subprocess.run(
        [PY, "-m", __spec__.name, "--child", kind, repr(t0)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    wall = time.time() - t0
    if out.returncode != 0 or not out.stdout.strip():
        sys.exit(f"{kind} child failed (rc {out.returncode}):\n{out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    return result


def import_times(code: str) -> dict[str, int]:
    """Cumulative import time (us) per module for `python -X importtime -c code`."""
    err = subprocess.run([PY, "-X", "importtime", "-c", code], cwd=ROOT, capture_output=True, text=True).stderr
    times = {}
    for line in err.splitlines():
        if m := re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line):
            times.setdefault(m[3], int(m[1]))
    return times


def imports_report(top: int = 15) -> None:
    ours = import_times("import assetmon_tui.ui.app")
    bare = import_times("import textual.app, textual.widgets; from textual.widgets import DataTable, Footer, Header")
    only = {name: us for name, us in ours.items() if name not in bare}
    roots = {n: us for n, us in only.items() if "." not in n or n.rsplit(".", 1)[0] not in only}
    print(f"\nimports only AssetMonApp pays ({len(only)} modules), top by cumulative time:")
    rows = [[name, f"{us / 1000:.1f}"] for name, us in sorted(roots.items(), key=lambda kv: -kv[1])[:top]]
    print(table(["module", "ms"], rows))
    print(
        f"whole import: ours {ours.get('assetmon_tui.ui.app', 0) / 1000:.0f} ms,"
        f" textual.app {bare.get('textual.app', 0) / 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--imports", action="store_true", help="always list the imports only we pay")
    parser.add_argument(
        "--diagnose", action="store_true", help="also time AssetMonApp with its start-up thread worker disabled"
    )
    parser.add_argument("--commands", action="store_true", help="time whole CLI commands beside nmap -p1 instead")
    parser.add_argument("--worker", action="store_true", help="with --commands: a Celery worker runs too")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "T0"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], float(args.child[1]))
    if args.commands:
        with tempfile.TemporaryDirectory(prefix="assetmon-bench-commands-") as tmp:
            return commands(args, tmp)

    with tempfile.TemporaryDirectory(prefix="assetmon-bench-startup-") as tmp:
        measure(args, tmp)


def measure(args, tmp: str) -> None:
    env = {**os.environ, "ASSETMON_HOME": tmp, "ASSETMON_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    env.pop("DATABASE_URL", None)
    kinds = ["ours", "bare"] + (["ours-nostart"] if args.diagnose else [])
    for kind in kinds:
        spawn(kind, env)  # warm the page cache; not counted
    results: dict[str, list[dict]] = {kind: [] for kind in kinds}
    for run in range(1, args.runs + 1):
        for kind in kinds if run % 2 else kinds[::-1]:
            results[kind].append(spawn(kind, env))
        print(
            f"run {run:2}: ours {results['ours'][-1]['complete'] * 1000:6.0f} ms"
            f"   bare {results['bare'][-1]['complete'] * 1000:6.0f} ms",
            flush=True,
        )

    def med(kind, key):
        return statistics.median(r[key] for r in results[kind])

    rows = []
    labels = {
        "ours": "AssetMonApp",
        "bare": "bare Header+DataTable+Footer",
        "ours-nostart": "AssetMonApp, _start worker disabled",
    }
    for kind in kinds:
        label = labels[kind]
        done = sorted(r["complete"] for r in results[kind])
        rows.append(
            [label]
            + [f"{med(kind, key) * 1000:.0f}" for key in ("imported", "first_frame", "complete")]
            + [f"{done[0] * 1000:.0f}", f"{done[-1] * 1000:.0f}"]
            + [f"{med(kind, key) * 1000:.0f}" for key in ("main_cpu", "cpu")]
        )
    print(
        f"\nprocess start -> painted, ms, {args.runs} fresh processes each (p50; min/max of complete),"
        f" headless {SIZE[0]}x{SIZE[1]}"
    )
    print(
        table(
            [
                "app",
                "imports done",
                "first frame",
                "complete (footer keys)",
                "min",
                "max",
                "CPU main thread",
                "CPU all threads",
            ],
            rows,
        )
    )
    ratio = med("ours", "complete") / med("bare", "complete")
    first = med("ours", "first_frame") / med("bare", "first_frame")
    cpu = med("ours", "main_cpu") / med("bare", "main_cpu")
    print(
        f"\nratio ours/bare (medians): complete dashboard {ratio:.2f}x, first frame {first:.2f}x,"
        f" main-thread CPU {cpu:.2f}x;"
        f"  target <= {TARGET}x: {verdict(ratio <= TARGET)}"
    )
    if args.imports or ratio > TARGET:
        imports_report()


def commands(args, tmp: str) -> None:
    import shutil
    from pathlib import Path

    from assetmon_tui.testing import VENV_BIN, RedisServer, Worker

    home = Path(tmp) / "home"
    redis = RedisServer(Path(tmp)).start()
    env = {**os.environ, "ASSETMON_HOME": str(home), "ASSETMON_REDIS_URL": redis.url}
    env.pop("DATABASE_URL", None)
    env.pop("ASSETMON_BACKEND", None)
    assetmon = str(VENV_BIN / "assetmon")
    runs = {
        "assetmon health": [assetmon, "health"],
        "assetmon scan (1 port)": [assetmon, "scan", "127.0.0.1", "--modules", "ports", "--ports", "22"],
    }
    if shutil.which("nmap"):
        runs["nmap -p1 127.0.0.1"] = ["nmap", "-p1", "127.0.0.1"]
    else:
        print("nmap is not installed: no peer in this run", file=sys.stderr)
    worker = None
    try:
        if args.worker:
            worker = Worker(Path(tmp) / "worker.log", {"ASSETMON_HOME": str(home), "ASSETMON_REDIS_URL": redis.url})
            worker.start()
        subprocess.run(runs["assetmon scan (1 port)"], env=env, capture_output=True, timeout=120)  # creates the DB
        times: dict[str, list[float]] = {name: [] for name in runs}
        said: dict[str, str] = {}
        for run in range(args.runs):
            for name in runs if run % 2 == 0 else list(runs)[::-1]:
                started = time.perf_counter()
                out = subprocess.run(runs[name], env=env, capture_output=True, text=True, timeout=120)
                times[name].append(time.perf_counter() - started)
                lines = (out.stdout + out.stderr).strip().splitlines()
                said[name] = (lines[-1] if lines else "")[:70]
    finally:
        if worker is not None:
            worker.stop()
        redis.stop()
    peer = statistics.median(times["nmap -p1 127.0.0.1"]) if "nmap -p1 127.0.0.1" in times else None
    targets = {"assetmon health": HEALTH_TARGET, "assetmon scan (1 port)": SCAN_TARGET}
    rows = []
    for name, values in times.items():
        med = statistics.median(values)
        target = targets.get(name)
        rows.append(
            [
                name,
                f"{med:.3f}",
                f"{min(values):.3f}",
                f"{max(values):.3f}",
                f"{med / peer:.1f}x" if peer else "-",
                f"< {target} s: {verdict(med < target)}" if target else "-",
                said[name],
            ]
        )
    print(
        f"\nwhole commands, s, {args.runs} fresh processes each, alternating (load {os.getloadavg()[0]:.1f},"
        f" {'a Celery worker' if args.worker else 'no worker: thread backend'})"
    )
    print(table(["command", "median", "min", "max", "vs nmap", "target", "last line"], rows))


if __name__ == "__main__":
    main()
