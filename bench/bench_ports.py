"""The whole 65,535-port scan of 127.0.0.1, as a user runs it, against nmap;
then service names against `nmap -sV --version-light` on the same open ports.

Usage: python -m bench.bench_ports [--runs N] [--skip-sv]

1. Wall time of whole commands, side by side, runs alternating so both see
   the same machine load:
     assetmon scan 127.0.0.1 --modules ports --ports all --json
       (ASSETMON_HOME in a temporary folder, ASSETMON_BACKEND=thread;
       banners included: that is what the command does)
     nmap -sT -p- -T4 -n -Pn 127.0.0.1
       (-n: no reverse DNS, which could leave the machine; -Pn: no
       discovery round; connect scan only, no banners)
   plus our 1-port scan of the same command, for the part that is start-up.
2. Service names: the ports both found open in every run, scanned by
   `assetmon scan ... --ports <them>` and `nmap -sV --version-light -n -Pn
   -p <them>`: a table port -> ours / nmap's, and both wall times.

The bench starts known listeners on 127.0.0.1 (two silent, an SSH-like and an
SMTP-like greeter, HTTP, a slow HTTP, HTTPS, and a real redis-server); the
machine's own services (PostgreSQL on 5432 here) are scanned as they are.
Ports listening on every interface (0.0.0.0 or ::) belong to the machine,
not to loopback services: they are left out of both scans (and said so).
Only 127.0.0.1 is ever scanned.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.server
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from assetmon_tui.testing import machine_listeners
from bench.common import table, verdict

TARGET = "127.0.0.1"
ASSETMON = str(Path(sys.executable).parent / "assetmon")


# -- the listeners ------------------------------------------------------------------------

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _hold(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(OSError):
        while await reader.read(4096):
            pass


class _Web(http.server.BaseHTTPRequestHandler):
    """A small page from the standard library's HTTP server (what nmap knows as SimpleHTTPServer)."""

    delay = 0.0
    body = b"<html><title>bench</title></html>"

    def do_GET(self) -> None:
        self._answer(self.body)

    def do_HEAD(self) -> None:
        self._answer(b"")

    def _answer(self, body: bytes) -> None:
        time.sleep(self.delay)
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def handle(self) -> None:
        with contextlib.suppress(OSError):  # TLS noise and resets from the scanners
            super().handle()


class _SlowWeb(_Web):
    delay = 0.2


def web_server(handler: type[_Web], tls: ssl.SSLContext | None) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer((TARGET, 0), handler)
    server.daemon_threads = True
    if tls is not None:  # the handshake in the request's thread, not in accept()
        server.socket = tls.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True, name="bench-web").start()
    return server


def _greeter(greeting: bytes, replies: dict[bytes, bytes]) -> Serve:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            writer.write(greeting)
            while line := await reader.readline():
                reply = next((r for start, r in replies.items() if line.upper().startswith(start)), replies[b""])
                writer.write(reply)
                await writer.drain()

    return serve


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _hold(reader)


LISTENERS = {
    "silent-a": (_silent, False),
    "silent-b": (_silent, False),
    "ssh-like": (
        _greeter(b"SSH-2.0-OpenSSH_9.6p1 Debian-4\r\n", {b"": b"Invalid SSH identification string.\r\n"}),
        False,
    ),
    "smtp-like": (
        _greeter(
            b"220 mail.bench.test ESMTP Postfix (Debian/GNU)\r\n",
            {b"EHLO": b"250-mail.bench.test\r\n250 8BITMIME\r\n", b"": b"502 5.5.2 Error: command not recognized\r\n"},
        ),
        False,
    ),
}
WEB = {"http": (_Web, False), "slow-http (0.2 s)": (_SlowWeb, False), "https": (_Web, True)}


class Listeners:
    """LISTENERS on free ports of 127.0.0.1, served by one event loop in a thread."""

    def __init__(self) -> None:
        self.ports: dict[str, int] = {}
        self._web: list[http.server.ThreadingHTTPServer] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-listeners")

    def __enter__(self) -> Listeners:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("listeners did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        for server in self._web:
            server.shutdown()
            server.server_close()

    def _run(self) -> None:
        from assetmon_tui.lab.certs import server_context

        asyncio.set_event_loop(self._loop)
        tls = server_context(("bench.test",), "Bench", self_signed=True)
        for name, (serve, secure) in LISTENERS.items():
            server = self._loop.run_until_complete(asyncio.start_server(serve, TARGET, 0, ssl=tls if secure else None))
            self.ports[name] = server.sockets[0].getsockname()[1]
        for name, (handler, secure) in WEB.items():
            web = web_server(handler, tls if secure else None)
            self._web.append(web)
            self.ports[name] = web.server_address[1]
        self._ready.set()
        self._loop.run_forever()


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[int | None]:
    """A real redis-server on a free port of 127.0.0.1 (yields its port, or None without redis-server)."""
    if not shutil.which("redis-server"):
        yield None
        return
    from assetmon_tui.testing import RedisServer

    with RedisServer(workdir) as server:
        yield server.port


def port_spec(excluded: set[int]) -> str:
    """All ports but `excluded`, as ranges ("all" when none)."""
    if not excluded:
        return "all"
    ranges, start = [], 1
    for port in sorted(excluded):
        if port > start:
            ranges.append(f"{start}-{port - 1}" if port - 1 > start else str(start))
        start = port + 1
    if start <= 65535:
        ranges.append(f"{start}-65535" if start < 65535 else "65535")
    return ",".join(ranges)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind((TARGET, 0))
        port: int = sock.getsockname()[1]
        return port


# -- the commands -------------------------------------------------------------------------


def ours(ports: str, env: dict[str, str]) -> tuple[float, dict[int, tuple[str, str]]]:
    """Wall time of `assetmon scan` and {port: (service, banner)}."""
    cmd = [ASSETMON, "scan", TARGET, "--modules", "ports", "--ports", ports, "--json"]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    found = {}
    for line in done.stdout.splitlines():
        row = json.loads(line)
        if row.get("type") == "service":
            found[int(row["port"])] = (row["service"], row["banner"])
    return elapsed, found


def nmap(args: list[str]) -> tuple[float, dict[int, dict[str, str]]]:
    """Wall time of nmap and {open port: its <service> attributes}."""
    cmd = ["nmap", *args, "-n", "-Pn", "-oX", "-", TARGET]
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    elapsed = time.perf_counter() - started
    found = {}
    for port in ET.fromstring(out).iter("port"):
        state = port.find("state")
        if state is not None and state.get("state") == "open":
            service = port.find("service")
            found[int(port.get("portid", "0"))] = dict(service.attrib) if service is not None else {}
    return elapsed, found


def nmap_name(attrs: dict[str, str]) -> str:
    """nmap's name as its table shows it (ssl/http), with '?' for a guess from the port number alone."""
    name = attrs.get("name", "")
    if attrs.get("tunnel") == "ssl":
        name = f"ssl/{name}"
    if name and attrs.get("method") == "table":
        name += "?"
    return name


def nmap_detail(attrs: dict[str, str]) -> str:
    return " ".join(attrs[k] for k in ("product", "version", "extrainfo") if attrs.get(k))


# The same service under both tools' names (ours first).
_SAME = {"https": {"ssl/http", "https", "ssl/https"}, "ssl": {"ssl", "ssl/unknown", "ssl/tcpwrapped"}}


def agrees(mine: str, theirs: str) -> str:
    """'yes' / 'no', or '-' when nmap only guessed from the port number (or not at all)."""
    if not theirs or theirs.endswith("?") or theirs in ("unknown", "tcpwrapped"):
        return "-"
    return "yes" if mine == theirs or theirs in _SAME.get(mine, ()) else "no"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-sv", action="store_true", help="leave out the nmap -sV comparison (slow)")
    args = parser.parse_args()
    if not shutil.which("nmap"):
        sys.exit("nmap not found: apt-get update && apt-get install -y nmap")

    with (
        tempfile.TemporaryDirectory(prefix="assetmon-bench-ports-") as tmp,
        Listeners() as listeners,
        redis_server(Path(tmp)) as redis_port,
    ):
        known = dict(listeners.ports)
        if redis_port:
            known["redis-server"] = redis_port
        env = {**os.environ, "ASSETMON_HOME": str(Path(tmp) / "home"), "ASSETMON_BACKEND": "thread"}
        env.pop("DATABASE_URL", None)
        excluded = machine_listeners() - set(known.values())
        spec = port_spec(excluded)
        count = 65535 - len(excluded)
        nmap_ports = "-p-" if spec == "all" else f"-p{spec}"
        print(f"listeners on {TARGET}: " + ", ".join(f"{name} {port}" for name, port in known.items()))
        if excluded:
            print(f"left out of both scans (listening on every interface: the machine's): {sorted(excluded)}")
        print(f"scanning {count:,} ports of {TARGET}; {args.runs} runs, alternating\n")

        ours(str(closed_port()), env)  # the database is made once, as on a user's machine
        times: dict[str, list[float]] = {"assetmon": [], "nmap": [], "start-up": []}
        open_sets: list[set[int]] = []
        for run in range(1, args.runs + 1):
            order = ("assetmon", "nmap") if run % 2 else ("nmap", "assetmon")
            for who in order:
                if who == "assetmon":
                    elapsed, found = ours(spec, env)
                    open_sets.append(set(found))
                else:
                    elapsed, nfound = nmap(["-sT", nmap_ports, "-T4"])
                    open_sets.append(set(nfound))
                times[who].append(elapsed)
            times["start-up"].append(ours(str(closed_port()), env)[0])
            print(f"run {run}: assetmon {times['assetmon'][-1]:.2f} s   nmap {times['nmap'][-1]:.2f} s")

        stable = set.intersection(*open_sets)
        flaky = set.union(*open_sets) - stable
        rows = [
            [f"assetmon scan {TARGET} --modules ports --ports {'all' if spec == 'all' else '<all but the above>'}"]
            + [f"{statistics.median(times['assetmon']):.2f}", f"{min(times['assetmon']):.2f}", "yes"],
            [f"nmap -sT {'-p-' if spec == 'all' else '-p<same>'} -T4 -n -Pn {TARGET}"]
            + [f"{statistics.median(times['nmap']):.2f}", f"{min(times['nmap']):.2f}", "no"],
            [f"assetmon scan {TARGET} --modules ports --ports <1 closed port> (start-up)"]
            + [f"{statistics.median(times['start-up']):.2f}", f"{min(times['start-up']):.2f}", "-"],
        ]
        print()
        print(table(["whole command", "median s", "best s", "banners"], rows))
        ratio = statistics.median(times["assetmon"]) / statistics.median(times["nmap"])
        print(f"\nassetmon / nmap (median): {ratio:.2f}  -> no slower than nmap: {verdict(ratio <= 1.0)}")
        scan_only = statistics.median(times["assetmon"]) - statistics.median(times["start-up"])
        print(f"assetmon without its start-up (median difference): {scan_only:.2f} s")
        print(f"open in every run, both tools: {sorted(stable)}")
        if flaky:
            print(f"open in some runs only (other processes' listeners come and go): {sorted(flaky)}")
        missing = set(known.values()) - stable
        if missing:
            print(f"bench listeners not seen open every time: {sorted(missing)}")

        if args.skip_sv or not stable:
            return
        listed = ",".join(str(p) for p in sorted(stable))
        ours_s, mine = ours(listed, env)
        nmap_s, theirs = nmap(["-sV", "--version-light", f"-p{listed}"])
        names = {port: name for name, port in known.items()}
        rows = []
        for port in sorted(stable):
            service, banner = mine.get(port, ("", ""))
            attrs = theirs.get(port, {})
            rows.append(
                [
                    str(port),
                    names.get(port, "(machine)"),
                    service or "-",
                    (banner[:38] + "…") if len(banner) > 39 else banner,
                    nmap_name(attrs) or "-",
                    nmap_detail(attrs)[:40],
                    agrees(service, nmap_name(attrs)),
                ]
            )
        print()
        print(table(["port", "listener", "ours", "our banner", "nmap -sV", "nmap version", "same"], rows))
        same = [r for r in rows if r[-1] != "-"]
        agreed = sum(r[-1] == "yes" for r in same)
        only_ours = sum(r[-1] == "-" and r[2] != "-" for r in rows)
        print(
            f"\nwall: assetmon {ours_s:.2f} s, nmap -sV --version-light {nmap_s:.2f} s "
            f"({nmap_s / ours_s:.1f}x); names nmap identified: {agreed}/{len(same)} the same; "
            f"named by us where nmap only guessed or gave up: {only_ours}"
        )
        print(f"as good as nmap, several times faster: {verdict(agreed == len(same) and nmap_s >= 3 * ours_s)}")


if __name__ == "__main__":
    main()
