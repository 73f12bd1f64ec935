"""DNS brute force, side by side with gobuster: the same wordlist, the same
fast authoritative server (NSD) on loopback, whole commands timed in one run.

Usage: python -m bench.bench_dns [--names 200] [--rounds 3] [--threads 200] [--rate 0] [--rrl 0] [--wordlist FILE]

Needs `nsd` and `gobuster` (apt-get install -y nsd gobuster). The bench writes
a zone `bench.test` of ~200 real names taken from the wordlist (A, some with
AAAA too, some AAAA only, some CNAMEs to other names of the zone, no wildcard;
IPv6 addresses are IPv4-mapped 127.77.x.x, so a handshake to one stays on loopback),
starts NSD as a child on a free loopback port (`rrl-ratelimit: 0`, one server
process, run as `nobody` when the bench is root) and times, in turns:

  gobuster   `gobuster dns -d bench.test -w LIST -r 127.0.0.1:PORT -t 200 -q`
  api        our brute force alone: `discover()` with the wordlist source only
             (no CT, SANs or tools, no recursion: gobuster's work), in a child
             `python -m bench.bench_dns --child ...` (interpreter start included)
  scan       `assetmon scan bench.test --modules subdomains --nameserver 127.0.0.1:PORT`
             (a fresh ASSETMON_HOME, CT off, a Redis address nobody listens on:
             the in-process backend; SANs and recursion as configured)

For each: wall time of the whole command (median of the rounds), queries the
server answered (NSD's own counters, `nsd-control stats`), queries a second,
CPU per query (the command's user+system time over its queries) and the names
found, checked against the zone. The api row also prints the brute force's own
time (inside the process) and the pace the resolver used. Loopback only: the
zone's addresses are 127.77.x.x and every server binds 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import table

ROOT = Path(__file__).resolve().parent.parent
ZONE = "bench.test"


# ---- the child: our brute force alone, through the Python API ------------------------------


def child(nameserver: str, wordlist: str, concurrency: int, rate: float) -> None:
    import asyncio

    from assetmon_tui.scanners.dns import DnsOptions
    from assetmon_tui.scanners.subdomains import SubdomainOptions, discover

    paces: list[Any] = []
    options = SubdomainOptions(
        ct=False,
        san=False,
        tools=(),
        recursive_depth=0,
        wordlist_path=wordlist,
        dns=DnsOptions(nameservers=[nameserver], rtypes=("A", "AAAA"), concurrency=concurrency),
        dns_rate=rate,
        dns_pace=paces.append,
    )

    async def run() -> list[Any]:
        return [f async for f in discover([ZONE], options, lambda n: n == ZONE or n.endswith("." + ZONE))]

    cpu, started = time.process_time(), time.perf_counter()
    found = asyncio.run(run())
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    last = paces[-1][0] if paces else None
    print(
        json.dumps(
            {
                "elapsed": elapsed,
                "cpu": cpu,
                "found": sorted({f.name for f in found if f.source == "wordlist"}),
                "sent": last.sent if last else 0,
                "timeouts": last.timeouts if last else 0,
                "lowest": last.lowest if last else None,
                "backoffs": last.backoffs if last else 0,
            }
        )
    )


# ---- the zone and the server ----------------------------------------------------------------


def make_zone(words: list[str], count: int) -> tuple[str, dict[str, str]]:
    """A zone file with `count` names from `words` (undotted ones, spread over
    the list) and name -> kind ("a", "a+aaaa", "aaaa", "cname")."""
    plain = [w for w in words if "." not in w]
    step = max(1, len(plain) // count)
    chosen = plain[::step][:count]
    lines = [
        f"$ORIGIN {ZONE}.",
        "$TTL 300",
        "@ IN SOA ns1 hostmaster 1 3600 600 86400 300",
        "@ IN NS ns1",
        "ns1 IN A 127.0.0.1",
    ]
    kinds: dict[str, str] = {}
    for i, word in enumerate(chosen):
        address = f"127.77.{i // 250}.{i % 250 + 1}"
        if i % 10 == 3 and i > 0:
            kind = "cname"
            lines.append(f"{word} IN CNAME {chosen[i - 1]}")
        elif i % 10 == 7:
            kind = "aaaa"
            lines.append(f"{word} IN AAAA ::ffff:{address}")
        elif i % 5 == 1:
            kind = "a+aaaa"
            lines += [f"{word} IN A {address}", f"{word} IN AAAA ::ffff:{address}"]
        else:
            kind = "a"
            lines.append(f"{word} IN A {address}")
        kinds[f"{word}.{ZONE}"] = kind
    return "\n".join(lines) + "\n", kinds


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (right now)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket() as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return int(port)
    raise OSError("no free port")


class Nsd:
    """NSD on 127.0.0.1:PORT in a folder of its own, as a child process."""

    def __init__(self, folder: Path, zone_text: str, rrl: int = 0):
        self.folder = folder
        self.port = free_port()
        (folder / "zone").write_text(zone_text)
        self.conf = folder / "nsd.conf"
        self.conf.write_text(
            f"""server:
    ip-address: 127.0.0.1@{self.port}
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{folder}"
    database: ""
    zonelistfile: "{folder}/zone.list"
    xfrdfile: "{folder}/xfrd.state"
    xfrdir: "{folder}"
    pidfile: "{folder}/nsd.pid"
    logfile: "{folder}/nsd.log"
    server-count: 1
    tcp-count: 200
    rrl-ratelimit: {rrl}
    rrl-whitelist-ratelimit: {rrl}
    verbosity: 0
remote-control:
    control-enable: yes
    control-interface: {folder}/nsd.ctl
zone:
    name: {ZONE}
    zonefile: zone
"""
        )
        command = ["nsd", "-d", "-c", str(self.conf)]
        if os.geteuid() == 0:  # never as root: as nobody, in a folder nobody owns
            shutil.chown(folder, "nobody", "nogroup")
            for path in folder.iterdir():
                shutil.chown(path, "nobody", "nogroup")
            command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise OSError(f"nsd exited: {self.proc.stderr.read() if self.proc.stderr else ''}")
            try:
                self.stats()
                return
            except (OSError, subprocess.CalledProcessError, ValueError):
                time.sleep(0.1)
        raise OSError("nsd did not start")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stats(self) -> dict[str, int]:
        """NSD's counters since the last call (nsd-control stats resets them)."""
        out = subprocess.run(
            ["nsd-control", "-c", str(self.conf), "stats"], capture_output=True, text=True, check=True, timeout=10
        ).stdout
        values = {}
        for line in out.splitlines():
            key, _, value = line.partition("=")
            if value.strip().isdigit():
                values[key.strip()] = int(value)
        if "num.queries" not in values:
            raise ValueError(out)
        return values

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---- measuring one command -------------------------------------------------------------------


def timed(
    command: list[str], env: dict[str, str] | None = None
) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(wall seconds, CPU seconds of the command and its children, the result)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, result


def gobuster_names(stdout: str) -> set[str]:
    names = set()
    for raw in stdout.splitlines():
        line = raw.rsplit("\x1b[2K", 1)[-1].strip()  # (each line starts with a carriage return and a clear)
        if line.lower().startswith("found:"):
            names.add(line.split(":", 1)[1].split()[0].strip().lower().rstrip("."))
    return names


def scan_env(home: Path, wordlist: Path, rate: float = 0) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSETMON_") and k != "DATABASE_URL"}
    env.update(
        ASSETMON_HOME=str(home),
        ASSETMON_CT_URL="",  # no CT search: nothing but the brute force (and loopback handshakes)
        ASSETMON_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",  # nobody there: the in-process backend
        ASSETMON_NAMESERVERS="127.0.0.1:9",  # (the --nameserver flag is given; this only guards the default)
        ASSETMON_WORDLIST=str(wordlist),  # the list gobuster reads
        ASSETMON_DNS_RATE=str(int(rate)),
    )
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=200, help="real names in the zone")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=200, help="gobuster -t, and our concurrency")
    parser.add_argument("--rate", type=float, default=0.0, help="our per-nameserver rate ceiling (0: none)")
    parser.add_argument("--wordlist", help="default: the bundled one")
    parser.add_argument("--rrl", type=int, default=0, help="NSD's response rate limit (0: off, the default)")
    parser.add_argument("--child", nargs=2, metavar=("NAMESERVER", "WORDLIST"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.threads, args.rate)
        return
    for tool in ("nsd", "nsd-control", "gobuster"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not on PATH: apt-get install -y nsd gobuster")

    from assetmon_tui.scanners.subdomains import load_wordlist

    with tempfile.TemporaryDirectory(prefix="assetmon-bench-dns-") as tmp:
        folder = Path(tmp)
        folder.chmod(0o755)  # NSD runs as nobody
        words = load_wordlist(args.wordlist)
        wordlist = folder / "words.txt"  # the list both read: the bundled one, as our loader reads it
        wordlist.write_text("\n".join(words) + "\n")
        wordlist.chmod(0o644)
        zone_text, kinds = make_zone(words, args.names)
        (folder / "nsd").mkdir()
        nsd = Nsd(folder / "nsd", zone_text, args.rrl)
        expected = set(kinds) | ({f"ns1.{ZONE}"} if "ns1" in words else set())  # the zone's own name server
        print(
            f"NSD {nsd.address}: zone {ZONE} with {len(expected)} names "
            f"({', '.join(f'{sum(k == x for k in kinds.values())} {x}' for x in ('a', 'a+aaaa', 'aaaa', 'cname'))}); "
            f"{len(words)} words; {args.rounds} rounds; {os.cpu_count()} CPUs"
            + (f"; NSD limits responses to {args.rrl} a second" if args.rrl else "")
        )
        commands = {
            f"gobuster dns -t {args.threads}": (
                ["gobuster", "dns", "-d", ZONE, "-w", str(wordlist), "-r", nsd.address, "-t", str(args.threads), "-q"],
                None,
            ),
            "ours: brute force (API)": (
                [sys.executable, "-m", "bench.bench_dns", "--child", nsd.address, str(wordlist)]
                + ["--threads", str(args.threads), "--rate", str(args.rate)],
                None,
            ),
            "ours: assetmon scan --modules subdomains": (
                [str(Path(sys.executable).with_name("assetmon")), "scan", ZONE, "--modules", "subdomains"]
                + ["--nameserver", nsd.address, "--json"],
                "scan",
            ),
        }
        results: dict[str, list[dict[str, Any]]] = {label: [] for label in commands}
        try:
            nsd.stats()  # reset
            for _ in range(args.rounds):
                for label, (command, kind) in commands.items():
                    env = None
                    if kind == "scan":
                        home = Path(tempfile.mkdtemp(prefix="home-", dir=folder))
                        env = scan_env(home, wordlist, args.rate)
                    wall, cpu, result = timed(command, env)
                    queries = nsd.stats()["num.queries"]
                    if result.returncode != 0:
                        sys.exit(f"{label} failed ({result.returncode}):\n{result.stderr[-2000:]}")
                    row: dict[str, Any] = {"wall": wall, "cpu": cpu, "queries": queries}
                    if label.startswith("gobuster"):
                        row["found"] = gobuster_names(result.stdout)
                    elif kind == "scan":
                        lines = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
                        row["found"] = {x["name"] for x in lines if x.get("type") == "host"} - {ZONE}
                        outcome = lines[-1] if lines else {}
                        row["sources"] = [s["source"] for s in outcome.get("sources", [])]
                        if any(s.startswith("ct ") for s in row["sources"]):
                            sys.exit("the scan searched CT: it must not (ASSETMON_CT_URL is empty)")
                    else:
                        inner = json.loads(result.stdout.strip().splitlines()[-1])
                        row.update(found=set(inner["found"]), inner=inner)
                    results[label].append(row)
        finally:
            nsd.stop()

    def middle(label: str) -> dict[str, Any]:
        runs = sorted(results[label], key=lambda r: r["wall"])
        return runs[len(runs) // 2]

    rows = []
    for label, runs in results.items():
        median = middle(label)
        queries, found = median["queries"], median["found"]
        missing, extra = expected - found, found - expected
        check = "all" if not missing and not extra else f"-{len(missing)} +{len(extra)}"
        rows.append(
            [
                label,
                f"{median['wall']:.2f} s",
                f"{min(r['wall'] for r in runs):.2f} s",
                f"{queries:,}",
                f"{queries / median['wall']:,.0f}",
                f"{median['cpu'] / max(1, queries) * 1e6:.0f} µs",
                f"{len(found)} ({check})",
            ]
        )
    print(table(["command", "wall (median)", "best", "queries", "queries/s", "CPU/query", "names (vs zone)"], rows))
    for label in results:
        found = middle(label)["found"]
        for what, names in (("missed", expected - found), ("invented", found - expected)):
            if names:
                shown = ", ".join(f"{n} ({kinds.get(n, 'NS')})" for n in sorted(names)[:5])
                print(f"{label} {what} {len(names)}: {shown}")
    gobuster, api, scan = (middle(label) for label in commands)
    inner = api["inner"]
    print(
        f"brute force inside the API process: {inner['elapsed']:.2f} s, {inner['sent']:,} queries sent = "
        f"{inner['sent'] / inner['elapsed']:,.0f} q/s, {inner['cpu'] / max(1, inner['sent']) * 1e6:.0f} µs CPU/query; "
        f"timeouts {inner['timeouts']}, back-offs {inner['backoffs']}"
        + (f" (lowest pace {inner['lowest']:.0f} q/s)" if inner["backoffs"] else "")
    )
    print(
        f"gobuster / ours (median wall): API {gobuster['wall'] / api['wall']:.2f}x, "
        f"whole scan {gobuster['wall'] / scan['wall']:.2f}x; every name gobuster found, found by "
        f"the API: {gobuster['found'] <= api['found']}, the scan: {gobuster['found'] <= scan['found']}"
    )


if __name__ == "__main__":
    main()
