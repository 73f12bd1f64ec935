"""`assetmon lab` / `python -m assetmon_tui.lab`: serve until SIGINT/SIGTERM.

At start it prints one short line for a person (the nameserver and CT URL a
scan needs, how many hosts, where the full info went) and writes the full JSON
info (every URL and address) to a file: `<state dir>/lab.json`, or
`--json-file PATH`. With `--json` stdout is that JSON on one line instead (what
scripts and tests read).

SIGUSR1 advances the mutation level of the running lab (the new info, whole,
goes to stderr as one JSON line, so stdout stays a single line; `LabProcess`
reads it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from .runtime import Lab


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="assetmon lab", description="Serve a fake company on loopback.")
    p.add_argument(
        "--estate",
        choices=("acme", "breadth"),
        default="acme",
        help="acme: the fake company (default); breadth: one name per discovery technique (lab/breadth.py)",
    )
    p.add_argument("--domain", default="acme.test")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--mutate", type=int, default=0, metavar="N", help="mutation level (0 = baseline)")
    p.add_argument("--hosts", type=int, default=None, metavar="N", help="number of web virtual hosts")
    p.add_argument("--host", default="127.0.0.1", help="loopback address for DNS and CT")
    p.add_argument("--port-dns", type=int, default=0, metavar="P", help="DNS port (UDP+TCP); 0 = free")
    p.add_argument("--port-ct", type=int, default=0, metavar="P", help="CT (crt.sh-like) port; 0 = free")
    p.add_argument("--port-http", type=int, default=None, metavar="P", help="HTTP port (default: 80 if free)")
    p.add_argument("--port-https", type=int, default=None, metavar="P", help="HTTPS port (default: 443 if free)")
    p.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="MS",
        help="milliseconds before every DNS, HTTP and CT answer and service banner, like a network (0 = none)",
    )
    p.add_argument("--free-ports", action="store_true", help="do not try 80/443/22/25/6379 first")
    p.add_argument("--json", action="store_true", help="print the full info as one JSON line on stdout")
    p.add_argument("--json-file", metavar="PATH", help="write the full info here (default: <state dir>/lab.json)")
    return p


def _info_file(given: str | None) -> Path:
    if given:
        path = Path(given).expanduser()
        if not path.is_absolute():  # start.sh changes into the repository: the user's folder is $ASSETMON_CWD
            path = Path(os.environ.get("ASSETMON_CWD") or os.getcwd()) / path
        return path
    from ..core.config import get_settings

    return get_settings().state_dir / "lab.json"


def _write_info(path: Path, info: dict[str, Any]) -> None:
    """The full info, whole or not at all; OSError names the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def summary(info: dict[str, Any], where: Path | None) -> str:
    """The start line, within 80 columns: what a scan of the lab needs (its
    nameserver and CT URL) and its size; then where the full info went."""
    line = f"{info['domain']}: nameserver {info['nameserver']}  ct_url {info['ct_url']}  {info['hosts']} hosts"
    return line + (f"\nlab info (JSON): {where}" if where else "")


def _until_stopped() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    return stop


def breadth(args: argparse.Namespace, info_file: Path | None) -> int:
    """The breadth estate until stopped; its wordlist is written beside the info."""
    from .breadth import BreadthLab

    stop = _until_stopped()
    with BreadthLab(args.host) as lab:
        info = lab.info
        if info_file is not None:
            try:
                words = info_file.with_name("breadth-words.txt")
                words.parent.mkdir(parents=True, exist_ok=True)
                words.write_text("\n".join(info["words"]) + "\n", encoding="utf-8")
                info["wordlist"] = str(words)
                _write_info(info_file, info)
            except OSError as exc:
                print(f"assetmon lab: cannot write {info_file} ({exc.strerror or exc})", file=sys.stderr)
                return 2
        line = f"{info['domain']}: nameserver {info['nameserver']}  web port {info['http_port']}  targets"
        line += f" {' '.join(info['targets'])}" + (f"\nlab info (JSON): {info_file}" if info_file else "")
        print(json.dumps(info) if args.json else line, flush=True)
        stop.wait()
    return 0


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    info_file = None if args.json and not args.json_file else _info_file(args.json_file)
    if args.estate == "breadth":
        return breadth(args, info_file)
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
        latency=max(0.0, args.latency) / 1000,
    )
    stop = _until_stopped()
    bump = threading.Event()
    if hasattr(signal, "SIGUSR1"):
        signal.signal(signal.SIGUSR1, lambda *_: bump.set())
    try:
        lab.start()
    except OSError as exc:  # a port given on the command line that another program holds
        print(
            f"assetmon lab: cannot listen on {exc.strerror or exc}: free it, or give another port"
            " (--port-dns, --port-ct, --port-http, --port-https; 0 picks a free one)",
            file=sys.stderr,
        )
        return 2
    with lab:
        if info_file is not None:
            try:
                _write_info(info_file, lab.info)
            except OSError as exc:
                print(f"assetmon lab: cannot write {info_file} ({exc.strerror or exc})", file=sys.stderr)
                return 2
        print(json.dumps(lab.info) if args.json else summary(lab.info, info_file), flush=True)
        while not stop.wait(0.2):
            if bump.is_set():
                bump.clear()
                info = lab.set_mutation(lab.estate.mutate + 1)
                print(json.dumps(info), file=sys.stderr, flush=True)
    return 0
