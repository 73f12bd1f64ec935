"""Fan-out (issue 13): one scan of a large lab estate on 1 worker, 2 worker processes, and 1 worker with 2 slots.

    .venv/bin/python -m bench.bench_fanout [--hosts 2000] [--latency 30] [--modules dns,ports,http]
        [--http-concurrency 10] [--dns-concurrency 10] [--with-subdomains] [--configs a,b,c]

Everything on loopback: the lab in a subprocess (`--free-ports`, web vhosts
on a port pair the scanners know, every DNS/HTTP/CT answer and service banner
delayed by `--latency` ms, so the steps wait on the network as on the
internet), a private redis-server, Celery workers (assetmon_tui.testing.Worker)
and a fresh PostgreSQL database on 127.0.0.1:5432 (trust auth, user postgres),
created here and dropped at the end. Configurations:

  a  1 worker process, --concurrency 1
  b  2 worker processes, --concurrency 1 each (two machines, simulated)
  c  1 worker process, --concurrency 2

Each configuration's fresh workers first scan 400 names (dns,ports,http): their
pool processes import the pipeline and the chunks measure their pace, so every
measured scan's chunks are sized from a measured pace (a new project takes any
project's). Ports: only the ones the lab bound (`--ports top100` adds a list;
other sessions' servers on the lab's 127.0.1.x addresses would then be found). Each run scans a fresh project with every
lab name as a target (with --with-subdomains, the apex domain, brute-forced
with a 20,000-word list, then the same steps).

Wall = submit -> final scan row. Per-step times come from the live progress
(polled every 0.1 s, as bench_pipeline does). Redis commands/s = the private
redis' INFO total_commands_processed delta / wall; DB commits/s =
pg_stat_database.xact_commit delta / wall (read after a 1.2 s pause so the
backends flushed their counters; the bench's own commits are subtracted).
CPU = user+sys seconds of every worker process (main and pool) and of the
lab. Chunks per step come from the scanchunk table (and how many each worker
ran); the inventories (hosts, services, endpoints) of all runs must be equal.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

from assetmon_tui.testing import RedisServer, Worker
from bench.bench_pipeline import module_times
from bench.common import (
    WEB_PORT_PAIRS,
    LabProcess,
    cpu_seconds,
    isolated_home,
    lab_env,
    lab_project,
    setenv,
    start_lab,
    table,
    verdict,
    wait_scan,
)

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CONFIGS = {
    "a": ("a: 1 process x 1", [1]),
    "b": ("b: 2 processes x 1", [1, 1]),
    "c": ("c: 1 process x 2", [2]),
}
NETWORK_STEPS = ("dns", "http", "subdomains")  # the steps that wait on the lab's latency
TARGET = 1.6


# -- PostgreSQL -----------------------------------------------------------------------


@contextlib.contextmanager
def pg_database():
    """A fresh database; its SQLAlchemy URL. Dropped (connections forced off) at the end."""
    import psycopg

    name = f"assetmon_bench_fanout_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        from assetmon_tui.store import db

        for key, engine in list(db._engines.items()):
            if name in key[1]:
                engine.dispose()
                del db._engines[key]
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def xact_commit(name: str) -> int:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        row = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (name,)).fetchone()
    return int(row[0]) if row else 0


class OwnCommits:
    """Commits this (the bench's) process makes, to subtract from the database's count."""

    def __init__(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        self.count = 0
        event.listen(Engine, "commit", self._add)

    def _add(self, _conn: object) -> None:
        self.count += 1


# -- helpers --------------------------------------------------------------------------


def wordlist(path: Path, size: int) -> Path:
    """The bundled generator's words (bench/gen_wordlist.py), extended with
    numbered variants to `size` distinct words."""
    from bench.gen_wordlist import generate

    words = dict.fromkeys(generate())
    base = list(words)
    n = 1
    while len(words) < size:
        for w in base:
            words.setdefault(f"{w}-x{n}", None)
            if len(words) >= size:
                break
        n += 1
    path.write_text("\n".join(list(words)[:size]) + "\n")
    return path


def redis_commands(url: str) -> int:
    import redis

    return int(redis.Redis.from_url(url).info("stats")["total_commands_processed"])


def worker_pids(workers: list[Worker]) -> list[int]:
    return [p for w in workers if w.proc for p in [w.proc.pid, *w.pool_pids()]]


def cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


def chunk_counts(scan_id: int) -> dict[str, tuple[int, dict[str, int]]]:
    """Per step: chunks planned and how many each worker ran."""
    from sqlmodel import select

    from assetmon_tui.store.db import session
    from assetmon_tui.store.models import ScanChunk

    out: dict[str, tuple[int, dict[str, int]]] = {}
    with session() as s:
        for row in s.exec(select(ScanChunk).where(ScanChunk.scan_id == scan_id)):
            count, per = out.get(row.step, (0, {}))
            who = (row.worker or "runner").split("@")[0].rsplit("-", 1)[0]
            per[who] = per.get(who, 0) + 1
            out[row.step] = (count + 1, per)
    return out


def inventory(project_id: int) -> dict[str, set[object]]:
    from assetmon_tui.store import repo

    return {
        "hosts": {h.name for h in repo.hosts(project_id)},
        "services": {(name, s.port) for s, name in repo.services(project_id)},
        "endpoints": {(e.url, e.status) for e, _ in repo.endpoints(project_id)},
    }


def scan_once(
    dispatcher, lab: LabProcess, modules: list[str], name: str, workers: list[Worker], ctx: dict, limit: int = 0
) -> dict:
    project_id, options = lab_project(lab, modules, name, ports=ctx["ports"])
    if limit:  # a warm-up: the first `limit` targets only
        from assetmon_tui.store import repo

        project_id = repo.create_project(name + "-small").id
        repo.add_targets(project_id, sorted(lab.info["addresses"])[:limit])
    pids = worker_pids(workers)
    before = (cpu_of(pids), cpu_seconds(lab.pid), redis_commands(ctx["redis"]), xact_commit(ctx["db"]))
    own = ctx["own"].count
    started = time.time()
    scan = dispatcher.submit(project_id, modules, options)
    steps = module_times(dispatcher, scan.id)
    row = wait_scan(scan.id, timeout=1800)
    wall = time.time() - started
    after_cpu = cpu_of(pids), cpu_seconds(lab.pid), redis_commands(ctx["redis"])
    own = ctx["own"].count - own
    time.sleep(1.2)  # PostgreSQL backends flush their statistics within a second
    commits = xact_commit(ctx["db"]) - before[3] - own
    return {
        "status": row.status,
        "error": row.error,
        "wall": wall,
        "steps": steps,
        "cpu_workers": after_cpu[0] - before[0],
        "cpu_lab": after_cpu[1] - before[1],
        "redis_per_s": (after_cpu[2] - before[2]) / wall,
        "commits_per_s": commits / wall,
        "chunks": chunk_counts(scan.id),
        "inventory": inventory(project_id),
        "pool_changed": worker_pids(workers) != pids,
    }


def run_config(key: str, modules: list[str], lab: LabProcess, tmp: Path, ctx: dict, warmup: bool) -> dict:
    from assetmon_tui.dispatch import Dispatcher

    label, slots = CONFIGS[key]
    workers = [Worker(tmp / f"worker-{key}{i}.log", concurrency=c, name=f"w{key}{i}") for i, c in enumerate(slots)]
    try:
        for w in workers:
            w.start()
        dispatcher = Dispatcher()
        if dispatcher.check_health().backend != "celery":
            raise SystemExit("the workers do not answer")
        if warmup:
            r = scan_once(dispatcher, lab, ["dns", "ports", "http"], f"warmup-{key}", workers, ctx, limit=400)
            print(f"  warm-up ({label}, 400 names): {r['status']} {r['wall']:.1f} s", flush=True)
        result = scan_once(dispatcher, lab, modules, f"{key}-{'+'.join(modules)}", workers, ctx)
    finally:
        for w in workers:
            w.stop()
    result["config"] = label
    steps = " ".join(f"{m} {t:.1f}" for m, t in result["steps"].items())
    chunks = " ".join(f"{s} {n} ({'/'.join(str(v) for v in per.values())})" for s, (n, per) in result["chunks"].items())
    print(
        f"  {label}: {result['status']} wall {result['wall']:.1f} s | steps {steps} | chunks {chunks} | "
        f"CPU workers {result['cpu_workers']:.1f} s lab {result['cpu_lab']:.1f} s"
        + (f" ERROR {result['error']}" if result["error"] else ""),
        flush=True,
    )
    return result


def report(title: str, results: list[dict], modules: list[str]) -> None:
    base = results[0]
    rows = []
    for r in results:
        speed = base["wall"] / r["wall"]
        steps = " ".join(
            f"{m} {r['steps'].get(m, 0):.1f}"
            + (f" ({base['steps'].get(m, 0) / r['steps'][m]:.2f}x)" if r is not base and r["steps"].get(m) else "")
            for m in modules
        )
        inv = r["inventory"]
        rows.append(
            [
                r["config"],
                r["status"],
                f"{r['wall']:.1f}",
                f"{speed:.2f}x",
                steps,
                f"{r['redis_per_s']:.0f}",
                f"{r['commits_per_s']:.0f}",
                f"{r['cpu_workers']:.1f} / {r['cpu_lab']:.1f}",
                f"{r['cpu_workers'] / r['wall']:.2f} / {r['cpu_lab'] / r['wall']:.2f}",
                " ".join(f"{s} {n}" for s, (n, _) in r["chunks"].items()) or "-",
                "/".join(str(len(inv[k])) for k in ("hosts", "services", "endpoints")),
            ]
        )
    print(f"\n{title}")
    print(
        table(
            [
                "configuration",
                "status",
                "wall s",
                "speed-up",
                "per step s (speed-up vs a)",
                "redis cmd/s",
                "DB commits/s",
                "CPU s workers / lab",
                "CPU s/s workers / lab",
                "chunks",
                "hosts/services/endpoints",
            ],
            rows,
        )
    )
    same = all(r["inventory"] == base["inventory"] for r in results)
    print(f"inventories identical across configurations: {'yes' if same else 'NO'}")
    if not same:
        for r in results[1:]:
            for k in base["inventory"]:
                a, b = base["inventory"][k], r["inventory"][k]
                if a != b:
                    print(f"  {r['config']} {k}: {len(a - b)} missing, {len(b - a)} extra, e.g. {sorted(a ^ b)[:3]}")
    two = next((r for r in results if r["config"].startswith("b")), None)
    if two is not None and base["config"].startswith("a"):
        for m in [m for m in modules if m in NETWORK_STEPS]:
            if two["steps"].get(m):
                s = base["steps"][m] / two["steps"][m]
                print(f"{m}: b over a {s:.2f}x (target >= {TARGET}x) {verdict(s >= TARGET)}")
        limits(base, two)


def limits(a: dict, b: dict) -> None:
    """What bounds b's speed-up, from the measured figures."""
    lab_load = b["cpu_lab"] / b["wall"]
    print(
        f"limits: lab CPU {lab_load:.2f} s/s on b" + (" (near 1: the lab is the bottleneck)" if lab_load > 0.8 else "")
    )
    cores = os.cpu_count() or 1
    total = (b["cpu_workers"] + b["cpu_lab"]) / b["wall"]
    print(
        f"        workers + lab CPU {total:.2f} of {cores} cores on b; redis {b['redis_per_s']:.0f} cmd/s, "
        f"DB {b['commits_per_s']:.0f} commits/s"
    )
    for step, (n, per) in b["chunks"].items():
        print(f"        {step}: {n} chunks, per worker {dict(per)}" + (" (too few chunks to share)" if n < 4 else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=2000, help="lab virtual hosts (up to 5000)")
    parser.add_argument("--latency", type=float, default=50.0, help="ms before each lab answer (0: loopback)")
    parser.add_argument("--modules", default="dns,ports,http")
    parser.add_argument("--http-concurrency", type=int, default=4, help="per chunk runner (ASSETMON_HTTP_CONCURRENCY)")
    parser.add_argument("--dns-concurrency", type=int, default=10, help="per chunk runner (ASSETMON_DNS_CONCURRENCY)")
    parser.add_argument("--with-subdomains", action="store_true", help="also runs with the 20,000-word brute force")
    parser.add_argument("--words", type=int, default=20_000)
    parser.add_argument("--configs", default="a,b,c")
    parser.add_argument(
        "--ports",
        default="",
        help="port list besides the lab's own ports (e.g. top100); default none: other sessions' servers on "
        "127.0.1.x (another lab on 80/443) would otherwise join the inventory",
    )
    parser.add_argument("--no-warmup", action="store_true")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a TERM still stops the workers, lab and database
    modules = args.modules.split(",")
    configs = args.configs.split(",")

    # free ports only (never 80/443), and the network's round trip
    lab = start_lab(args.hosts, ("--free-ports", "--latency", str(args.latency)), WEB_PORT_PAIRS[1:])
    print(
        f"lab: {lab.info['hosts']} vhosts, {len(lab.info['addresses'])} names, "
        f"{len(set(lab.info['addresses'].values()))} addresses, latency {lab.info.get('latency_ms')} ms; "
        f"http/dns concurrency {args.http_concurrency}/{args.dns_concurrency} per runner; "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    try:
        with (
            isolated_home(**lab_env(lab), ASSETMON_HEALTH_TIMEOUT="0.5") as tmp,
            RedisServer(tmp) as redis,
            pg_database() as (dbname, url),
        ):
            words = wordlist(Path(tempfile.mkstemp(dir=tmp, suffix=".txt")[1]), args.words)
            setenv(
                ASSETMON_REDIS_URL=redis.url,
                DATABASE_URL=url,
                ASSETMON_HTTP_CONCURRENCY=str(args.http_concurrency),
                ASSETMON_DNS_CONCURRENCY=str(args.dns_concurrency),
                ASSETMON_WORDLIST=str(words),
            )
            ctx = {"redis": redis.url, "db": dbname, "own": OwnCommits(), "ports": args.ports}
            plans = [(modules, f"{','.join(modules)}")]
            if args.with_subdomains:
                subs = ["subdomains", *[m for m in modules if m != "subdomains"]]
                plans.append((subs, f"{','.join(subs)} ({args.words:,}-word brute force)"))
            tables = []
            for mods, what in plans:
                print(f"modules {what}", flush=True)
                results = [run_config(k, mods, lab, tmp, ctx, warmup=not args.no_warmup) for k in configs]
                tables.append((what, results, mods))
            for what, results, mods in tables:
                report(
                    f"fan-out: {what}; lab {lab.info['hosts']} vhosts, latency {args.latency:g} ms, "
                    f"http/dns concurrency {args.http_concurrency}/{args.dns_concurrency} per runner, "
                    f"chunk_seconds {os.environ.get('ASSETMON_CHUNK_SECONDS', '5 (default)')}",
                    results,
                    mods,
                )
    finally:
        lab.stop()
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
