"""Port specs ("top100", "22,80,8000-8100", "all") and nmap's top-ports list:
plain parsing, no sockets, so the store (project settings) and the forms can
validate a spec without importing the scanner."""

from __future__ import annotations

import re
from pathlib import Path


def _load_top_ports() -> dict[int, str]:
    path = Path(__file__).resolve().parent.parent / "data" / "top_ports.tsv"
    ports: dict[int, str] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            port, _, name = line.partition("\t")
            ports[int(port)] = name
    return ports


TOP_PORTS = _load_top_ports()  # nmap frequency order: port -> service name (may be empty)
TOP_1000: list[int] = list(TOP_PORTS)  # most common first, as nmap --top-ports
TOP_100: list[int] = TOP_1000[:100]


def _port(text: str, spec: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"bad port {text!r} in {spec!r}: expected a number 1-65535")
    value = int(text)
    if not 1 <= value <= 65535:
        raise ValueError(f"port {value} out of range 1-65535 in {spec!r}")
    return value


def parse_ports(spec: str) -> list[int]:
    """Parse "top100" (default), "top1000", "all", "-", "1-65535",
    "22,80,8000-8100" (open ends allowed: "-1024", "60000-"). Duplicates are
    dropped; order is kept (top lists stay most-common-first)."""
    text = (spec or "").strip().lower() or "top100"
    ports: dict[int, None] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            raise ValueError(f"empty entry in port list {spec!r}")
        if top := re.fullmatch(r"top(\d+)", item):
            count = int(top[1])
            if not 1 <= count <= len(TOP_1000):
                raise ValueError(f"{item!r}: top lists go from top1 to top{len(TOP_1000)}")
            ports.update(dict.fromkeys(TOP_1000[:count]))
            continue
        if item in ("all", "-"):
            low, high = 1, 65535
        elif "-" in item:
            first, _, last = item.partition("-")
            low = _port(first.strip(), spec) if first.strip() else 1
            high = _port(last.strip(), spec) if last.strip() else 65535
            if low > high:
                raise ValueError(f"bad range {item!r} in {spec!r}: start is after end")
        else:
            low = high = _port(item, spec)
        ports.update(dict.fromkeys(range(low, high + 1)))
    return list(ports)
