"""Checkpoints: what a resumed scan needs so it repeats seconds of work, not steps.

A checkpoint (JSON in the scan row) holds the steps already done, the shared
`Found` state, and the current step's cursor: the keys of the items it has
finished (names resolved, addresses port-scanned, URLs probed). Items are
marked as their results are handed to the step's `BatchSaver`, and the
saver writes a checkpoint only after the rows it covers are committed, so a
checkpoint never claims work whose results are not in the store.

Writes are throttled (`checkpoint_interval` seconds) and guarded by the owner: a runner
that lost its lease gets `LeaseLost` instead of overwriting its successor.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..store import leases
from ..store.blobs import load_blob, save_blob
from .context import Found, ScanContext

if TYPE_CHECKING:  # the scanners a checkpoint holds results of are imported only to rebuild them
    from ..scanners.js import Page

VERSION = 1


class LeaseLost(Exception):
    """This runner no longer owns the scan (another one resumed it, or it was ended)."""


class Checkpoint:
    def __init__(self, ctx: ScanContext, owner: str) -> None:
        self.ctx = ctx
        self.owner = owner
        self.done: list[str] = []  # steps finished, in order
        self.step = ""
        self.items: set[str] = set()  # keys the current step has finished
        self.cursor: dict[str, Any] = {}  # the current step's own progress (e.g. brute-force marks)
        self._cursor: Callable[[], dict[str, Any]] | None = None
        self._last_write = 0.0
        self._page_sha: dict[str, str] = {}  # page url -> its body's blob (written once)

    # -- resume ------------------------------------------------------------------------

    def restore(self) -> bool:
        """Load the scan's checkpoint into `ctx.found`; False when there is none."""
        data = leases.load_checkpoint(self.ctx.scan_id)
        if data.get("v") != VERSION:
            return False
        self.done = [str(s) for s in data.get("done", [])]
        self.step = str(data.get("step", ""))
        self.items = {str(k) for k in data.get("items", [])}
        self.cursor = dict(data.get("cursor") or {})
        self.ctx.found = decode_found(data.get("found") or {})
        self.ctx.show_outcomes()
        self.ctx.progress.counters.update({str(k): int(v) for k, v in data.get("counters", {}).items()})
        for name, (done, total) in (data.get("modules") or {}).items():
            module = self.ctx.progress.module(str(name))
            module.done, module.total = int(done), int(total)
        return True

    # -- during a step -----------------------------------------------------------------

    def begin(self, step: str) -> set[str]:
        """Start (or resume) a step; returns the keys it already finished."""
        if step != self.step:
            self.step, self.items, self.cursor = step, set(), {}
        self._cursor = None
        return set(self.items)

    def track(self, cursor: Callable[[], dict[str, Any]]) -> None:
        """Have `cursor()` (the step's own progress) saved with each checkpoint."""
        self._cursor = cursor

    def mark(self, key: str) -> None:
        self.items.add(key)

    def due(self) -> bool:
        return time.monotonic() - self._last_write >= self.ctx.settings.checkpoint_interval

    def capture(self) -> dict[str, Any]:
        """The checkpoint as of now (call on the event loop: steps mutate `found` there)."""
        return {
            "v": VERSION,
            "done": list(self.done),
            "step": self.step,
            "items": sorted(self.items),
            "cursor": self._cursor() if self._cursor else self.cursor,
            "found": encode_found(self.ctx.found, self._blob),
            "counters": dict(self.ctx.progress.counters),
            # finished steps' bars, so whoever carries the scan on shows them as they ended
            "modules": {n: [m.done, m.total] for n, m in self.ctx.progress.modules.items() if n in self.done},
        }

    def _blob(self, page: Page) -> str:
        sha = self._page_sha.get(page.url)
        if sha is None:
            sha = self._page_sha[page.url] = save_blob(page.html.encode())
        return sha

    def write(self, state: dict[str, Any]) -> None:
        """Store a captured checkpoint (blocking: call from a worker thread)."""
        self._last_write = time.monotonic()
        if not leases.save_checkpoint(self.ctx.scan_id, self.owner, state):
            raise LeaseLost(f"scan {self.ctx.scan_id} is no longer run by {self.owner}")

    def finish_step(self, step: str) -> dict[str, Any]:
        self.done.append(step)
        self.step, self.items, self.cursor, self._cursor = "", set(), {}, None
        return self.capture()


# -- Found <-> JSON -----------------------------------------------------------------------


def _encoders(page_blob: Callable[[Page], str]) -> dict[str, Callable[[Found], Any]]:
    return {
        "addresses": lambda f: {name: sorted(ips) for name, ips in f.addresses.items()},
        "open_ports": lambda f: {ip: {str(p): svc for p, svc in ports.items()} for ip, ports in f.open_ports.items()},
        "port_scanned": lambda f: sorted(f.port_scanned),
        "direct": lambda f: sorted(f.direct),
        "urls": lambda f: list(f.urls),
        "pages": lambda f: [{"url": p.url, "host": p.host, "sha256": page_blob(p)} for p in f.pages],
        "roots": lambda f: list(f.roots),
        "wildcards": lambda f: sorted(f.wildcards),
        "revealed": lambda f: sorted(f.revealed),
        "answered": lambda f: sorted(f.answered),
        "probed": lambda f: sorted(f.probed),
        "unsure_hosts": lambda f: sorted(f.unsure_hosts),
        "scripts": lambda f: sorted(f.scripts),
        "failed_scripts": lambda f: sorted(f.failed_scripts),
        "outcomes": lambda f: f.outcomes,
        "nuclei": lambda f: sorted(f.nuclei),
        "nuclei_templates": lambda f: f.nuclei_templates,
        "cnamed": lambda f: [
            {"name": r.name, "status": r.status, "records": [[x.rtype, x.value, x.ttl] for x in r.records]}
            for r in f.cnamed
        ],
    }


def encode_found(found: Found, page_blob: Callable[[Page], str]) -> dict[str, Any]:
    return {name: encode(found) for name, encode in _encoders(page_blob).items()}


def encode_fields(found: Found, fields: tuple[str, ...]) -> dict[str, Any]:
    """Some fields of the state (a chunk's delta); page bodies go to blobs."""
    encoders = _encoders(lambda page: save_blob(page.html.encode()))
    return {name: encoders[name](found) for name in fields}


def merge_fields(found: Found, delta: dict[str, Any]) -> None:
    """Add a chunk's delta to the state: sets and maps are united, lists keep
    their first copy of each entry."""
    part = decode_found(delta, fields=tuple(delta))
    for name in delta:
        mine, theirs = getattr(found, name), getattr(part, name)
        if name == "addresses":
            for key, ips in theirs.items():
                mine[key].update(ips)
        elif name == "open_ports":
            for key, ports in theirs.items():
                mine[key].update(ports)
        elif isinstance(mine, set):
            mine |= theirs
        elif isinstance(mine, dict):
            mine.update(theirs)
        elif name == "pages":
            urls = {p.url for p in mine}
            mine += [p for p in theirs if p.url not in urls]
        elif name == "cnamed":
            names = {r.name for r in mine}
            mine += [r for r in theirs if r.name not in names]
        else:
            mine += [x for x in theirs if x not in mine]


def decode_found(data: dict[str, Any], fields: tuple[str, ...] | None = None) -> Found:
    """The state from its JSON; with `fields`, only those (a chunk loads its
    step's inputs, not every page body of the scan)."""
    if fields is not None:
        data = {k: v for k, v in data.items() if k in fields}
    found = Found()
    found.addresses = defaultdict(set, {n: set(ips) for n, ips in data.get("addresses", {}).items()})
    found.open_ports = defaultdict(
        dict, {ip: {int(p): svc for p, svc in ports.items()} for ip, ports in data.get("open_ports", {}).items()}
    )
    found.port_scanned = set(data.get("port_scanned", []))
    found.direct = set(data.get("direct", []))
    found.urls = list(data.get("urls", []))
    if data.get("pages"):  # scanners.js (and http, secrets) only for a scan that fetched pages
        from ..scanners.js import Page
    for page in data.get("pages", []):
        body = load_blob(page["sha256"])
        if body is not None:  # a pruned blob: that page's scripts are not looked at again
            found.pages.append(Page(page["url"], page["host"], body.decode("utf-8", "replace")))
    found.roots = list(data.get("roots", []))
    found.wildcards = set(data.get("wildcards", []))
    found.revealed = set(data.get("revealed", []))
    found.answered = set(data.get("answered", []))
    found.probed = set(data.get("probed", []))
    found.unsure_hosts = set(data.get("unsure_hosts", []))
    found.scripts = set(data.get("scripts", []))
    found.failed_scripts = set(data.get("failed_scripts", []))
    found.nuclei = set(data.get("nuclei", []))
    found.nuclei_templates = str(data.get("nuclei_templates", ""))
    found.outcomes = {str(k): {str(a): str(b) for a, b in v.items()} for k, v in data.get("outcomes", {}).items()}
    if data.get("cnamed"):
        from ..scanners.dns import DnsRecord, DnsResult
    found.cnamed = [
        DnsResult(r["name"], r["status"], [DnsRecord(r["name"], t, v, ttl) for t, v, ttl in r["records"]])
        for r in data.get("cnamed", [])
    ]
    return found
