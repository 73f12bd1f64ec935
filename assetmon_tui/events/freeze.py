"""Freeze a scan's inventory: what it saw, plus what it could not have seen
carried over from the previous snapshot, each item moved along its lifecycle.

An asset this scan did not see is *missing* only if the scan looked at it
definitively: its kind is one the scan's modules cover, the scan was not of
some seeds only, and the source that would have seen it answered:
- a name and its records: DNS gave a definitive answer for it this scan
  (ok, nodata, NXDOMAIN; not a timeout or servfail); its takeover finding
  also needs the takeover check to have looked at its CNAMEs.
  Known names are resolved again each scan (`pipeline.steps.dns`), so a name
  found by a source that failed or did not run is still checked;
- a port: its address answered the port scan on some port, and the port was
  in this scan's list;
- a web endpoint: its URL answered (or refused) this scan;
- a script or a finding in one: the script was fetched and analysed, or its
  origin's pages (scheme, host, port) were all read (none timed out) and no
  longer lead to it (an inline script: its own page was read); a script left
  out by the per-scan file limit is not looked at;
- an address: it answered the port scan, and none of its ports or endpoints
  is still there.
A missing item becomes "unconfirmed"; after `gone_after` consecutive covered
misses it is gone. Seen again, an unconfirmed item is simply open (a flap,
no event) and a gone one is reopened.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

from ..core.modules import coverage
from ..scanners.dns_status import UNCERTAIN
from ..store import snapshots
from ..store.models import Scan
from .items import DEFINITIVE_DNS, LIVE_DNS, Item, Items, Looked, item_of, origin

# Which scan modules see *all* of an asset kind (so absence can mean missing);
# a kind no module covers is never missing, only new.
COVERAGE = coverage()


@dataclass
class Frozen:
    cur: Items  # the inventory after this scan, gone items included
    covered: set[str]  # kinds this scan's modules cover
    added: list[Item] = field(default_factory=list)  # new or reopened
    removed: list[Item] = field(default_factory=list)  # gone with this scan
    missing: list[Item] = field(default_factory=list)  # missed for the first time (unconfirmed)
    common: list[tuple[Item, Item]] = field(default_factory=list)  # (before, now) of items present in both
    ended: list[int] = field(default_factory=list)  # version rows that stop holding
    versions: list[Item] = field(default_factory=list)  # items whose new version starts here


def port_set(scan: Scan) -> set[int] | None:
    from ..core.config import get_settings
    from ..scanners.ports import parse_ports

    try:
        return set(parse_ports(json.loads(scan.options or "{}").get("ports") or get_settings().ports))
    except ValueError:
        return None  # unknown list: treat every port as scanned


def freeze(s: Session, scan: Scan, prev: Items, looked: Looked, gone_after: int, partial: bool) -> Frozen:
    assert scan.id is not None  # a stored scan
    modules = set(filter(None, scan.modules.split(",")))
    covered = {k for k, mods in COVERAGE.items() if mods & modules} if not partial else set()
    live: Items = {}
    definitive: set[str] = set()  # names DNS answered for this scan
    unsure: set[str] = set()  # names DNS did not answer for: nothing of theirs is missing
    for kind, rows in snapshots.seen_in(s, scan.project_id, scan.id).items():
        for row, host in rows:
            if kind == "host" and not row.is_address:
                if row.dns_status in DEFINITIVE_DNS:
                    definitive.add(row.name)
                elif row.dns_status in UNCERTAIN:
                    unsure.add(row.name)
                if row.dns_status not in LIVE_DNS:
                    continue  # NXDOMAIN, or no answer: not seen (missing or carried, below)
            item = item_of(kind, row, host)
            live[item.key] = item
    ports = port_set(scan) if "service" in covered else None
    out = Frozen({}, covered)

    def looked_at(old: Item) -> bool:
        kind = old.kind
        if kind not in covered or old.host in unsure:
            return False
        if kind in ("host", "dns"):
            return old.host in definitive
        if kind == "finding:takeover":
            return old.host in definitive and Looked.has(looked.cnamed, old.host)
        if kind == "finding:nuclei":  # other templates say nothing of what the previous ones found
            return Looked.has(looked.nuclei, str(old.state.get("location") or ""))
        if kind == "service":
            return Looked.has(looked.answered, old.host) and (ports is None or old.state.get("port") in ports)
        if kind == "http":
            return Looked.has(looked.probed, old.state.get("url") or old.label)
        if kind == "js" or kind.startswith("finding:"):
            where = str(old.state.get("location") or old.state.get("url") or "")
            if where in looked.failed_scripts:
                return False
            if "#inline-" in where:  # an inline script: its page was read, or not
                return Looked.has(looked.pages, where.split("#inline-", 1)[0])
            return Looked.has(looked.scripts, where) or Looked.has(looked.page_origins, origin(where))
        return False

    def seen(item: Item, old: Item | None) -> None:
        if old is None or not old.present:
            item.status = "new" if old is None else "reopened"
            out.added.append(item)
        else:
            out.common.append((old, item))
            if old.state == item.state and old.misses == 0:
                out.cur[item.key] = old  # unchanged: the stored version goes on holding
                return
            item.status = "open"
        if old is not None and old.version_id is not None:
            out.ended.append(old.version_id)
        out.cur[item.key] = item
        out.versions.append(item)

    def missed(old: Item) -> None:
        item = Item(old.kind, old.asset_id, old.host, old.entity, old.state, misses=old.misses + 1)
        item.status = "gone" if item.misses >= gone_after else "unconfirmed"
        (out.removed if item.status == "gone" else out.missing if old.misses == 0 else []).append(item)
        if old.version_id is not None:
            out.ended.append(old.version_id)
        out.cur[item.key] = item
        out.versions.append(item)

    for key, item in live.items():
        seen(item, prev.get(key))
    for key, old in prev.items():  # addresses last: whether they stay depends on their ports
        if key in live or old.kind == "ip":
            continue
        if old.present and looked_at(old):
            missed(old)
        else:
            out.cur[key] = old  # not looked at (or gone already): as it was
    holding = {i.host for i in out.cur.values() if i.present and i.kind in ("service", "http")}
    for key, old in prev.items():
        if key in live or old.kind != "ip":
            continue
        if old.present and "ip" in covered and Looked.has(looked.answered, old.host) and old.host not in holding:
            missed(old)
        else:
            out.cur[key] = old
    return out


def gone_after_of(scan: Scan, default: int) -> int:
    value: Any = json.loads(scan.options or "{}").get("gone_after")
    try:
        return max(1, int(value)) if value not in (None, "") else max(1, default)
    except (TypeError, ValueError):
        return max(1, default)
