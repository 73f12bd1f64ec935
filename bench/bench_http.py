"""HTTP probing of the lab's web virtual hosts: our prober vs WhatWeb.

Usage: python -m bench.bench_http [--hosts 1000] [--runs 1] [--whatweb-sample N] [--concurrency 50]

Isolation. The whole benchmark re-executes itself inside a fresh network and
mount namespace (`unshare --net --mount`, needs root): the only interface is
loopback, so nothing either tool does can reach another machine, whatever
it tries to resolve. Inside, /etc/hosts is replaced (a bind mount visible in
that namespace only) by the lab's names -> loopback addresses, because
WhatWeb resolves host names with the system resolver and cannot be given a
Host header per URL. The lab runs in its own process on the standard ports
80/443 (free inside the namespace).

Both tools get the same list of http://NAME/ URLs (the lab's web hosts) and
follow redirects: WhatWeb to anywhere (its default), ours to the same host
name only (by design). WhatWeb runs at its default aggression (1: one GET per
URL, plus redirects) with 25 threads (its default). Ours runs with its
defaults: TLS certificate parsing and technology fingerprinting on, favicon
off (a second run with favicons on is also printed).

Titles are compared per host: the title of the final 200 answer each tool
reports for http://NAME/.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from assetmon_tui.scanners.http import HttpOptions, HttpTarget, probe

ROOT = Path(__file__).resolve().parent.parent


NETNS_FLAG = "ASSETMON_BENCH_NETNS"


def isolate() -> None:
    """Re-run this script in a private network + mount namespace."""
    if os.environ.get(NETNS_FLAG) == "1":
        return
    if not shutil.which("unshare"):
        sys.exit("unshare(1) not found: the benchmark only runs network-isolated")
    env = {**os.environ, NETNS_FLAG: "1"}
    cmd = [
        "unshare",
        "--net",
        "--mount",
        "--propagation",
        "private",
        "--",
        sys.executable,
        "-m",
        __spec__.name,
        *sys.argv[1:],
    ]
    sys.exit(subprocess.call(cmd, env=env))


def setup_namespace(names: dict[str, str]) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with tempfile.NamedTemporaryFile("w", suffix=".hosts", delete=False) as hosts:
        hosts.write("127.0.0.1 localhost\n::1 localhost\n")
        for name, address in sorted(names.items()):
            hosts.write(f"{address} {name}\n")
    subprocess.run(["mount", "--bind", hosts.name, "/etc/hosts"], check=True)
    # No DNS server is reachable in here anyway; make that explicit for every resolver.
    with tempfile.NamedTemporaryFile("w", suffix=".resolv", delete=False) as resolv:
        resolv.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    subprocess.run(["mount", "--bind", resolv.name, "/etc/resolv.conf"], check=True)


def start_lab(hosts: int) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "assetmon_tui.lab", "--json", "--hosts", str(hosts)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    info = json.loads(proc.stdout.readline())
    return proc, info


async def ours(names: list[str], info: dict, concurrency: int, favicon: bool) -> tuple[float, dict]:
    targets = [HttpTarget(n, info["http_port"], "http", address=info["addresses"][n]) for n in names]
    options = HttpOptions(concurrency=concurrency, favicon=favicon)
    started = time.perf_counter()
    results = {r.host: r async for r in probe(targets, options)}
    return time.perf_counter() - started, results


def whatweb(urls: list[str], workdir: Path, threads: int) -> tuple[float, list[dict]]:
    url_file = workdir / "urls.txt"
    url_file.write_text("\n".join(urls) + "\n")
    log = workdir / "whatweb.json"
    log.unlink(missing_ok=True)
    cmd = [
        "whatweb",
        "--no-errors",
        "--color=never",
        "-q",
        "-a",
        "1",
        "--max-threads",
        str(threads),
        "--open-timeout",
        "5",
        "--read-timeout",
        "10",
        f"--log-json={log}",
        "-i",
        str(url_file),
    ]
    started = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    elapsed = time.perf_counter() - started
    text = log.read_text() if log.exists() else ""
    entries = []
    try:
        entries = json.loads(text)  # a JSON array (whatweb >= 0.5)
    except ValueError:
        for line in text.splitlines():  # older: one object per line
            line = line.strip().rstrip(",")
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    entries.append(json.loads(line))
    return elapsed, [e for e in entries if isinstance(e, dict)]


def whatweb_titles(entries: list[dict]) -> dict[str, str]:
    """host -> title of its 200 answer (the final hop of its redirects)."""
    from urllib.parse import urlsplit

    out: dict[str, str] = {}
    for entry in entries:
        if entry.get("http_status") != 200:
            continue
        host = (urlsplit(entry.get("target", "")).hostname or "").lower()
        title = (entry.get("plugins", {}).get("Title", {}).get("string") or [""])[0]
        out[host] = title
    return out


def norm(title: str) -> str:
    return " ".join(html.unescape(title).split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=HttpOptions().concurrency)
    parser.add_argument("--whatweb-threads", type=int, default=25)
    parser.add_argument("--whatweb-sample", type=int, default=0, help="run WhatWeb on the first N hosts only")
    args = parser.parse_args()
    if not shutil.which("whatweb"):
        sys.exit("whatweb not found: apt-get update && apt-get install -y whatweb")
    isolate()

    from assetmon_tui.lab.estate import Estate

    estate = Estate(hosts=args.hosts)
    setup_namespace(estate.addresses())
    lab, info = start_lab(args.hosts)
    try:
        names = [n for n in estate.web_names if n in info["addresses"]]
        print(f"lab: {len(names)} web hosts, http port {info['http_port']}, https port {info['https_port']}")
        asyncio.run(ours(names[:50], info, args.concurrency, False))  # warm-up (imports, rules)
        ours_times, ww_times = [], []
        results = {}
        for run in range(1, args.runs + 1):
            elapsed, results = asyncio.run(ours(names, info, args.concurrency, False))
            ours_times.append(elapsed)
            print(f"run {run}: assetmon {len(names)} hosts in {elapsed:.2f} s = {len(names) / elapsed:.0f} hosts/s")
        fav_elapsed, fav_results = asyncio.run(ours(names, info, args.concurrency, True))
        print(
            f"assetmon with favicons: {len(names) / fav_elapsed:.0f} hosts/s "
            f"({sum(r.favicon_hash is not None for r in fav_results.values())} favicon hashes)"
        )

        sample = names[: args.whatweb_sample] if args.whatweb_sample else names
        port = "" if info["http_port"] == 80 else f":{info['http_port']}"
        urls = [f"http://{n}{port}/" for n in sample]
        with tempfile.TemporaryDirectory() as tmp:
            for run in range(1, args.runs + 1):
                elapsed, entries = whatweb(urls, Path(tmp), args.whatweb_threads)
                ww_times.append(elapsed)
                print(
                    f"run {run}: whatweb {len(sample)} hosts in {elapsed:.2f} s = {len(sample) / elapsed:.1f} hosts/s"
                )
        ww = whatweb_titles(entries)

        ours_rate = len(names) / min(ours_times)
        ww_rate = len(sample) / min(ww_times)
        same = differ = only_ours = only_ww = neither = 0
        examples = []
        for name in sample:
            a = norm(results[name].title) if name in results and results[name].status == 200 else None
            b = norm(ww[name]) if name in ww else None
            if a is None and b is None:
                neither += 1
            elif a is None:
                only_ww += 1
                examples.append((name, a, b))
            elif b is None:
                only_ours += 1
                examples.append((name, a, b))
            elif a == b:
                same += 1
            else:
                differ += 1
                examples.append((name, a, b))
        print()
        print(f"hosts/s: assetmon {ours_rate:.0f}, whatweb {ww_rate:.1f} -> {ours_rate / ww_rate:.1f}x")
        print(
            f"titles over {len(sample)} hosts: same {same}, different {differ}, only assetmon {only_ours}, "
            f"only whatweb {only_ww}, neither {neither}"
        )
        for name, a, b in examples[:10]:
            print(f"  {name}: assetmon={a!r} whatweb={b!r}")
        techs = sum(1 for r in results.values() if r.tech)
        print(
            f"assetmon: {techs}/{len(results)} hosts with technologies; "
            f"{sum(1 for r in results.values() if r.tls)} with TLS details (https redirects)"
        )
    finally:
        lab.terminate()
        lab.wait(10)


if __name__ == "__main__":
    main()
