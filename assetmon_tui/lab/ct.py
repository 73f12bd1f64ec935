"""A Certificate Transparency search in crt.sh's JSON shape.

`build_entries` turns the estate's certificate groups into crt.sh rows; each
certificate is logged twice (precertificate and final certificate, same serial,
different id) and the most visible names are renewed a few times, because real
crt.sh output looks like that and enumeration code must cope with duplicates.
Dates are fixed so the JSON is identical on every run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import random
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from .web_server import Handler, Request, Response

Entry = dict[str, Any]  # one crt.sh JSON row

ISSUERS = (
    (183267, "C=US, O=Let's Encrypt, CN=R3"),
    (295814, "C=US, O=Let's Encrypt, CN=E5"),
    (
        1397,
        "C=GB, ST=Greater Manchester, L=Salford, O=Sectigo Limited, CN=Sectigo RSA Domain Validation Secure Server CA",
    ),
)
_EPOCH = dt.datetime(2024, 1, 15, 8, 0, 0)
_RENEWED = 3  # certificates whose first name is a "popular" one get this many generations


def _stable_int(*parts: object, bits: int = 40) -> int:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest, "big") >> (256 - bits)


def _fmt(t: dt.datetime, millis: bool = False) -> str:
    return t.isoformat(timespec="milliseconds" if millis else "seconds")


def build_entries(seed: int, groups: list[tuple[int, tuple[str, ...]]]) -> list[Entry]:
    """`groups`: (mutation level that logged it, names on one certificate)."""
    rows: list[Entry] = []
    for level, names in groups:
        rng = random.Random(f"ct:{seed}:{','.join(names)}")
        ca_id, issuer = ISSUERS[rng.randrange(len(ISSUERS))]
        first = _EPOCH + dt.timedelta(days=rng.randrange(0, 300) + 200 * level, seconds=rng.randrange(86400))
        generations = _RENEWED if names[0].split(".")[0] in ("www", "*", "api", "mail") else 1
        for gen in range(generations):
            not_before = first + dt.timedelta(days=60 * gen)
            serial = f"{_stable_int(seed, names, gen, bits=144):036x}"
            for kind in ("precert", "cert"):
                logged = not_before + dt.timedelta(hours=1, seconds=17 if kind == "cert" else 0)
                rows.append(
                    {
                        "issuer_ca_id": ca_id,
                        "issuer_name": issuer,
                        "common_name": names[0],
                        "name_value": "\n".join(sorted(set(names))),
                        "id": 10_000_000_000 + _stable_int(seed, names, gen, kind, bits=32),
                        "entry_timestamp": _fmt(logged, millis=True),
                        "not_before": _fmt(not_before),
                        "not_after": _fmt(not_before + dt.timedelta(days=90)),
                        "serial_number": serial,
                        "result_count": len(set(names)) + 1,
                    }
                )
    rows.sort(key=lambda r: r["id"])
    return rows


def matches(q: str, name: str) -> bool:
    """crt.sh semantics we rely on: `%` is a SQL LIKE wildcard; a bare domain
    matches itself and everything below it (identity search)."""
    q, name = q.strip().lower(), name.lower()
    if "%" in q:
        return re.fullmatch(".*".join(map(re.escape, q.split("%"))), name) is not None
    return name == q or name.endswith("." + q)


def search(entries: list[Entry], q: str, deduplicate: bool = False) -> list[Entry]:
    out = [e for e in entries if any(matches(q, n) for n in e["name_value"].split("\n"))]
    if deduplicate:  # crt.sh's deduplicate=Y hides the precertificate twin
        seen: set[str] = set()
        unique = []
        for e in out:
            if e["serial_number"] not in seen:
                seen.add(e["serial_number"])
                unique.append(e)
        out = unique
    return out


def handler(get_entries: Callable[[], list[Entry]]) -> Handler:
    """HTTP handler for the CT listener: GET /?q=...&output=json."""

    def handle(req: Request) -> Response:
        if req.path != "/":
            return Response(404, {"Content-Type": "text/plain"}, b"Not Found\n")
        params = {k: v[-1] for k, v in parse_qs(req.query).items()}
        rows = (
            search(get_entries(), params.get("q", ""), params.get("deduplicate", "").upper() == "Y")
            if params.get("q")
            else []
        )
        if params.get("output") == "json":
            return Response(200, {"Content-Type": "application/json"}, json.dumps(rows).encode())
        table = "".join(f"<tr><td>{r['id']}</td><td>{html.escape(r['name_value'])}</td></tr>" for r in rows)
        return Response(
            200,
            {"Content-Type": "text/html; charset=utf-8"},
            f"<html><title>crt.sh | lab</title><table>{table}</table></html>".encode(),
        )

    return handle
