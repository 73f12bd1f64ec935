"""Full 65,535-port TCP connect scan of 127.0.0.1: our scanner vs nmap.

Usage: python -m bench.bench_ports [--runs N] [--concurrency N]

nmap runs as `nmap -sT -p- -T4 -n -Pn 127.0.0.1` (-n: no reverse DNS, which
could leave the machine; -Pn: no discovery round). Our scanner runs without
banner grabs, like -sT. Runs alternate so both see the same machine load.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import subprocess
import sys
import time

from assetmon_tui.scanners.ports import PortOptions, parse_ports, scan

TARGET = "127.0.0.1"
NMAP = ["nmap", "-sT", "-p-", "-T4", "-n", "-Pn", "-oX", "-", TARGET]


async def ours(concurrency: int) -> tuple[float, set[int]]:
    options = PortOptions(concurrency=concurrency, banners=False)
    started = time.perf_counter()
    found = {r.port async for r in scan([TARGET], parse_ports("all"), options)}
    return time.perf_counter() - started, found


def nmap() -> tuple[float, set[int]]:
    started = time.perf_counter()
    out = subprocess.run(NMAP, capture_output=True, text=True, check=True).stdout
    elapsed = time.perf_counter() - started
    found = {int(p) for p in re.findall(r'<port protocol="tcp" portid="(\d+)"><state state="open"', out)}
    return elapsed, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=PortOptions().concurrency)
    args = parser.parse_args()
    if not shutil.which("nmap"):
        sys.exit("nmap not found: apt-get update && apt-get install -y nmap")

    times: dict[str, list[float]] = {"assetmon": [], "nmap": []}
    ports: dict[str, set[int]] = {}
    for run in range(1, args.runs + 1):
        ours_s, ports["assetmon"] = asyncio.run(ours(args.concurrency))
        nmap_s, ports["nmap"] = nmap()
        times["assetmon"].append(ours_s)
        times["nmap"].append(nmap_s)
        print(f"run {run}: assetmon {ours_s:.3f} s   nmap {nmap_s:.3f} s")

    for name, values in times.items():
        print(
            f"{name:9} median {statistics.median(values):.3f} s  best {min(values):.3f} s  open: {sorted(ports[name])}"
        )
    ratio = statistics.median(times["assetmon"]) / statistics.median(times["nmap"])
    print(f"ratio assetmon/nmap (median): {ratio:.2f}  (best/best: {min(times['assetmon']) / min(times['nmap']):.2f})")
    if ports["assetmon"] != ports["nmap"]:
        # Ports opened or closed by other processes between runs can differ.
        print(
            f"open ports differ: only assetmon {sorted(ports['assetmon'] - ports['nmap'])}, "
            f"only nmap {sorted(ports['nmap'] - ports['assetmon'])}"
        )
    else:
        print("open ports agree")


if __name__ == "__main__":
    main()
