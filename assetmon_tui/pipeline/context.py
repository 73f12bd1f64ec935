"""The state of one scan that steps share: what the scan is (ids, scope,
settings, options), what earlier steps found, and where progress goes."""

from __future__ import annotations

import ipaddress
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.config import Settings
from ..core.progress import Progress
from ..core.sanitize import clean_text
from ..core.targets import Scope, check_cidr, is_ip, parse_target
from ..store import repo
from ..store.models import Scan, row_id

if TYPE_CHECKING:
    from ..scanners.dns import DnsResult
    from ..scanners.js import Page
    from .checkpoint import Checkpoint

Tick = Callable[[int, int], None]  # progress(done, total) of one step


@dataclass
class Found:
    """What earlier steps learned, for later ones. Steps name these fields in
    their `inputs` and `outputs`."""

    addresses: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # name -> IPs
    open_ports: dict[str, dict[int, str]] = field(default_factory=lambda: defaultdict(dict))  # IP -> port -> service
    port_scanned: set[str] = field(default_factory=set)  # addresses the ports step covered
    direct: set[str] = field(default_factory=set)  # IP targets
    urls: list[str] = field(default_factory=list)
    pages: list[Page] = field(default_factory=list)  # HTML pages for the js step
    roots: list[str] = field(default_factory=list)  # domains to enumerate under
    wildcards: set[str] = field(default_factory=set)  # zones answering any label
    cnamed: list[DnsResult] = field(default_factory=list)  # DnsResults with CNAMEs, for takeover
    revealed: set[str] = field(default_factory=set)  # names the first HTTP round revealed (unknown before)
    # What the scan looked at definitively (change events: only what was looked
    # at and not seen can be missing) and how each source fared.
    answered: set[str] = field(default_factory=set)  # addresses the port scan got an answer from
    probed: set[str] = field(default_factory=set)  # URLs that answered HTTP or refused the connection
    unsure_hosts: set[str] = field(default_factory=set)  # hosts with a probe that gave no definitive answer
    scripts: set[str] = field(default_factory=set)  # script URLs fetched and analysed
    failed_scripts: set[str] = field(default_factory=set)  # script URLs that could not be fetched
    nuclei: set[str] = field(default_factory=set)  # URLs nuclei ran on with unchanged templates
    nuclei_templates: str = ""  # the templates' version nuclei used
    outcomes: dict[str, dict[str, str]] = field(default_factory=dict)  # source -> step, status, reason


SEEDED = ("addresses", "direct", "urls", "roots")  # the Found fields `seed` fills


@dataclass
class ScanContext:
    scan_id: int
    project_id: int
    backend: str  # "thread" | "celery"
    modules: list[str]  # the steps this scan runs, in run order
    options: dict[str, Any]  # the scan row's options (seeds, ports, nameservers)
    settings: Settings
    scope: Scope
    progress: Progress
    ticker: Callable[[str], Tick]  # step name -> its progress callback (throttled reports)
    found: Found = field(default_factory=Found)
    saved_hosts: set[str] = field(default_factory=set)  # host names written this scan, to count new ones
    dns_status: dict[str, str] = field(default_factory=dict)  # name -> its DNS status so far this scan
    checkpoint: Checkpoint | None = None  # set by the run: steps mark finished items in it

    @property
    def nameservers(self) -> list[str]:
        nameservers: list[str] = self.options.get("nameservers") or self.settings.nameserver_list
        return nameservers

    def setting(self, name: str) -> Any:
        """A scan setting: the scan's options (which carry its project's settings) over the global ones."""
        value = self.options.get(name)
        return value if value not in (None, "", []) else getattr(self.settings, name)

    def outcome(self, step: str, source: str, status: str, reason: str = "") -> None:
        """Record how one source fared ("ok" | "failed" | "skipped"); anything
        but ok is a warning of the scan, shown while it runs."""
        # a reason may quote what a host or source sent (a CT error page): cleaned like any host text
        self.found.outcomes[source] = {"step": step, "status": status, "reason": clean_text(reason, 1024)}
        self.show_outcomes()

    def show_outcomes(self) -> None:
        """The warnings of the progress, from the outcomes (a resumed scan's too)."""
        for source, o in self.found.outcomes.items():
            if o["status"] != "ok":
                self.progress.warn(f"{source}: {o['status']}" + (f" ({o['reason']})" if o["reason"] else ""))

    def address_of(self, host: str) -> str | None:
        """The address to reach `host` at: itself if an IP, else its first resolved address."""
        return host if is_ip(host) else next(iter(sorted(self.found.addresses.get(host, ()))), None)


def scan_context(
    scan: Scan, backend: str, settings: Settings, progress: Progress, ticker: Callable[[str], Tick]
) -> ScanContext:
    """The context of a scan row, for its runner or one of its chunks."""
    return ScanContext(
        scan_id=row_id(scan),
        project_id=scan.project_id,
        backend=backend,
        modules=[m for m in scan.modules.split(",") if m],
        options=json.loads(scan.options or "{}"),
        settings=settings,
        scope=Scope(repo.parsed_targets(scan.project_id)),
        progress=progress,
        ticker=ticker,
    )


def seed(ctx: ScanContext) -> None:
    """Names and addresses to start from: the include rules, or the
    `seeds` option (a CLI scan of some targets; the project's exclusions still apply)."""
    found = ctx.found
    limit = int(ctx.setting("max_cidr_addresses"))  # checked when a target is added; again for older rows
    seeds = [parse_target(t, max_cidr=limit) for t in ctx.options.get("seeds", [])] or ctx.scope.includes
    for target in seeds:
        if target.kind == "domain":
            found.addresses.setdefault(target.host, set())
            found.roots.append(target.host)
        elif target.kind == "url":
            found.urls.append(target.value)
            host = target.host
            if is_ip(host):
                found.direct.add(host)
            else:
                found.addresses.setdefault(host, set())
        elif target.kind == "ip":
            found.direct.add(target.value)
        elif target.kind == "cidr":
            network = ipaddress.ip_network(target.value)
            check_cidr(network, limit)
            hosts = list(network.hosts()) or [network.network_address]
            found.direct.update(str(a) for a in hosts)
    found.direct = {a for a in found.direct if a in ctx.scope}
    # Enumerate under each zone once: a root below another root adds nothing but queries.
    roots = set(found.roots)
    found.roots = sorted(r for r in roots if not any(r.endswith("." + o) for o in roots))
