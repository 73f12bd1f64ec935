"""DNS brute force against the lab's DNS server: lookups and queries per
second, names found, and peak memory.

Usage: python -m bench.bench_dns [--concurrency 50,100,200] [--recursive-depth 0] [--hosts 150]

The lab runs in its own process (its DNS server is Python too, so sharing our
process would halve both). Each measured run is a fresh child process, so
`ru_maxrss` is that run's own peak; tracemalloc's peak (Python allocations
only, measured in a separate run as it slows allocation) is printed too.
Only `discover()`'s brute-force source runs: no CT, SANs or tools. The
wordlist is the bundled one (assetmon_tui/data/subdomains.txt).

A lookup is one name (A, then AAAA when the name exists; one query for a
NXDOMAIN); queries are counted from those outcomes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(nameserver: str, concurrency: int, depth: int, trace: bool) -> None:
    from assetmon_tui.scanners import subdomains
    from assetmon_tui.scanners.dns import DnsOptions, resolve_one
    from assetmon_tui.scanners.subdomains import SubdomainOptions, discover, load_wordlist

    counts = {"lookups": 0, "queries": 0, "timeouts": 0}
    rtypes = ("A", "AAAA")

    async def counting(resolver, name, types):
        result = await resolve_one(resolver, name, types)
        counts["lookups"] += 1
        counts["queries"] += 1 if result.status in ("nxdomain", "timeout") else len(types)
        counts["timeouts"] += result.status == "timeout"
        return result

    subdomains.resolve_one = counting  # count what the brute force asks
    options = SubdomainOptions(
        ct=False,
        san=False,
        tools=(),
        recursive_depth=depth,
        dns=DnsOptions(nameservers=[nameserver], rtypes=rtypes, concurrency=concurrency, timeout=2.0, retries=2),
    )
    words = len(load_wordlist())
    if trace:
        tracemalloc.start()

    async def run() -> list:
        return [f async for f in discover(["acme.test"], options, lambda n: n.endswith("acme.test"))]

    started = time.perf_counter()
    found = asyncio.run(run())
    elapsed = time.perf_counter() - started
    out = {
        "words": words,
        "elapsed": elapsed,
        "found": len({f.name for f in found if f.source == "wordlist"}),
        "wildcards": sorted(f.name for f in found if f.source == "wildcard"),
        **counts,
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    if trace:
        out["tracemalloc_peak"] = tracemalloc.get_traced_memory()[1]
    print(json.dumps(out))


def run_child(nameserver: str, concurrency: int, depth: int, trace: bool = False) -> dict:
    cmd = [
        sys.executable,
        "-m",
        __spec__.name,
        "--child",
        nameserver,
        "--concurrency",
        str(concurrency),
        "--recursive-depth",
        str(depth),
    ] + (["--trace"] if trace else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", default="50,100,200")
    parser.add_argument("--recursive-depth", type=int, default=0)
    parser.add_argument("--hosts", type=int, default=150)
    parser.add_argument("--child", metavar="NAMESERVER")
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.child, int(args.concurrency), args.recursive_depth, args.trace)
        return

    from assetmon_tui.lab.estate import Estate

    lab = subprocess.Popen(
        [sys.executable, "-m", "assetmon_tui.lab", "--json", "--free-ports", "--hosts", str(args.hosts)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        info = json.loads(lab.stdout.readline())
        estate = Estate(hosts=args.hosts)
        expected = len(estate.names_from("wordlist"))
        print(f"lab DNS at {info['nameserver']}; {expected} lab names are in common wordlists")
        for depth in sorted({0, args.recursive_depth}):
            for concurrency in (int(c) for c in args.concurrency.split(",")):
                r = run_child(info["nameserver"], concurrency, depth)
                print(
                    f"depth {depth} concurrency {concurrency:>3}: {r['lookups']} lookups ({r['queries']} queries) "
                    f"in {r['elapsed']:.2f} s = {r['lookups'] / r['elapsed']:.0f} lookups/s, "
                    f"{r['queries'] / r['elapsed']:.0f} queries/s; found {r['found']}, "
                    f"wildcards {r['wildcards']}; timeouts {r['timeouts']}; peak RSS {r['maxrss_kb'] / 1024:.1f} MiB"
                )
        traced = run_child(info["nameserver"], int(args.concurrency.split(",")[0]), args.recursive_depth, True)
        print(
            f"tracemalloc peak (Python allocations, {traced['words']} words): "
            f"{traced['tracemalloc_peak'] / 1024 / 1024:.1f} MiB"
        )
    finally:
        lab.terminate()
        lab.wait(10)


if __name__ == "__main__":
    main()
