"""`assetmon lab` / `python -m assetmon_tui.lab`: print one JSON line, serve until SIGINT/SIGTERM.

SIGUSR1 advances the mutation level of the running lab (the new info goes to
stderr, so stdout stays a single JSON line).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from .runtime import Lab


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="assetmon lab", description="Serve a fake company on loopback.")
    p.add_argument("--domain", default="acme.test")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--mutate", type=int, default=0, metavar="N", help="mutation level (0 = baseline)")
    p.add_argument("--hosts", type=int, default=None, metavar="N", help="number of web virtual hosts")
    p.add_argument("--host", default="127.0.0.1", help="loopback address for DNS and CT")
    p.add_argument("--port-dns", type=int, default=0, metavar="P", help="DNS port (UDP+TCP); 0 = free")
    p.add_argument("--port-ct", type=int, default=0, metavar="P", help="CT (crt.sh-like) port; 0 = free")
    p.add_argument("--port-http", type=int, default=None, metavar="P", help="HTTP port (default: 80 if free)")
    p.add_argument("--port-https", type=int, default=None, metavar="P", help="HTTPS port (default: 443 if free)")
    p.add_argument("--free-ports", action="store_true", help="do not try 80/443/22/25/6379 first")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    lab = Lab(
        args.domain,
        args.mutate,
        args.hosts,
        args.seed,
        args.host,
        dns_port=args.port_dns,
        ct_port=args.port_ct,
        http_port=args.port_http,
        https_port=args.port_https,
        standard_ports=not args.free_ports,
    )
    stop = threading.Event()
    bump = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if hasattr(signal, "SIGUSR1"):
        signal.signal(signal.SIGUSR1, lambda *_: bump.set())
    with lab:
        print(json.dumps(lab.info), flush=True)
        while not stop.wait(0.2):
            if bump.is_set():
                bump.clear()
                info = lab.set_mutation(lab.estate.mutate + 1)
                print(json.dumps({"mutate": info["mutate"], "services": info["services"]}), file=sys.stderr, flush=True)
    return 0
