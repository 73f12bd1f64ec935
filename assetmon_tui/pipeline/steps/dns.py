"""A, AAAA and CNAME of every in-scope name (found this scan or known from
earlier ones); MX, NS and TXT of the roots."""

from __future__ import annotations

from functools import partial
from typing import Any

from ...scanners.dns import DnsOptions, resolve
from ...scanners.dns_status import UNCERTAIN
from ...scanners.udp_resolver import ServerStats
from ...store.snapshots import known_names
from ..context import ScanContext, Tick
from ..persist import save_dns
from .base import ChunkedStep, finished, mark, offset, saver


def show_pace(counters: dict[str, int], stats: list[ServerStats]) -> None:
    """A resolver's pace in the progress counters: queries a second, and the
    limit in force while a nameserver is slowed down (a back-off)."""
    counters["dns_qps"] = round(sum(s.rate for s in stats))
    slowed = [s.limit for s in stats if s.backoffs and s.limit is not None]
    if slowed:
        counters["dns_limit"] = round(sum(slowed))
    else:
        counters.pop("dns_limit", None)


def dns_options(ctx: ScanContext, rtypes: tuple[str, ...] = ("A", "AAAA", "CNAME")) -> DnsOptions:
    return DnsOptions(
        nameservers=ctx.nameservers,
        rtypes=rtypes,
        concurrency=int(ctx.setting("dns_concurrency")),  # a profile may set it
        timeout=ctx.settings.dns_timeout,
        retries=ctx.settings.dns_retries,
        rate=float(ctx.setting("dns_rate") or 0),  # per nameserver...
        share_url=ctx.settings.redis_url if ctx.backend == "celery" else "",  # ...shared by every worker
    )


async def resolve_names(
    ctx: ScanContext,
    names: list[str],
    options: DnsOptions,
    progress: Tick | None = None,
    key: str = "",
    source: str = "resolver",
    unsure: dict[str, int] | None = None,
) -> None:
    """Resolve and save `names` (less those a resumed step already did, marked
    `key + name`); their addresses and CNAMEs go to the state (the http step
    resolves the names it reveals with this too). Names the resolver gave no
    definitive answer for make `source` a failed one: they keep what they had.
    With `unsure`, those are counted there instead (a chunk: the step tells)."""
    done = finished(ctx)
    todo = [n for n in names if key + n not in done]
    counts: dict[str, int] = {"names": 0} if unsure is None else unsure
    if progress is not None and names:
        progress(len(names) - len(todo), len(names))  # the whole total before the first answer
    before = ctx.progress.gauges()  # the resolver's pace shows while it runs, then what showed before
    async with saver(ctx, partial(save_dns, ctx), 200) as batch:
        last: list[ServerStats] = []

        def told(stats: list[ServerStats]) -> None:
            show_pace(ctx.progress.counters, stats)
            last[:] = stats

        async for result in resolve(todo, options, offset(progress, len(names) - len(todo)), told):
            ctx.found.addresses[result.name].update(result.addresses)
            if result.cnames:
                ctx.found.cnamed.append(result)
            if result.status in UNCERTAIN or result.status == "partial":
                counts[result.status] = counts.get(result.status, 0) + 1
            mark(ctx, key + result.name)
            await batch.add(result)
    ctx.progress.set_gauges(before)
    for server in last:
        if server.refused:
            refusals = REFUSED_BY + server.address
            counts[refusals] = counts.get(refusals, 0) + server.refused
    counts["names"] = counts.get("names", 0) + len(todo)
    if unsure is None:
        unanswered(ctx, counts, f"{source} {','.join(options.rtypes)}")


REFUSED_BY = "refused by "  # + a nameserver's address: a count of `unanswered`, not a status


def unanswered(ctx: ScanContext, counts: dict[str, int], source: str) -> None:
    """The outcome of a resolver's names: failed when some got no definitive
    answer; a nameserver that refused them is named (a resolver that is not
    recursive for us, an authoritative server asked for names it does not serve)."""
    unsure = {
        status: n for status, n in counts.items() if status != "names" and not status.startswith(REFUSED_BY) and n
    }
    if unsure:
        how = ", ".join(f"{n} {status}" for status, n in sorted(unsure.items()))
        reason = (
            f"{sum(unsure.values())} of {counts.get('names', 0)} names got no definitive answer ({how}): "
            "they keep what they had"
        )
        refused = sorted((key.removeprefix(REFUSED_BY), n) for key, n in counts.items() if key.startswith(REFUSED_BY))
        for address, n in refused:
            reason += f"; {address} refused {n} queries: does it resolve these names for you (a recursive resolver)?"
        ctx.outcome("dns", source, "failed", reason)


class Dns(ChunkedStep):
    name = "dns"
    inputs = ("addresses", "roots")
    outputs = ("addresses", "cnamed")
    chunk_outputs = ("addresses", "cnamed")
    saves = ("host", "dnsrecord")
    unit_seconds = 0.005  # one name's A, AAAA and CNAME
    min_units = 50

    def __init__(self, ctx: ScanContext) -> None:
        super().__init__(ctx)
        self.unsure: dict[str, int] = {}  # names without a definitive answer, by status (and "names" tried)

    def items(self) -> list[str]:
        # What the project already knows is looked at again, whatever found it
        # (and whether or not a discovery source ran or worked this time): a
        # known name is gone only when DNS says so. (Read in the step's runner,
        # before its chunks are cut.)
        roots = self.found.roots
        for name in known_names(self.ctx.project_id):
            if name in self.ctx.scope and any(name == r or name.endswith("." + r) for r in roots):
                self.found.addresses.setdefault(name, set())
        return sorted(n for n in self.found.addresses if n in self.ctx.scope)

    async def work(self, items: list[str]) -> None:
        await resolve_names(self.ctx, items, dns_options(self.ctx), self.tick(), unsure=self.unsure)

    def delta(self, items: list[str]) -> dict[str, Any]:
        mine = set(items)  # the chunk's names only: the rest of `addresses` is its input
        delta = super().delta(items)
        delta["addresses"] = {n: ips for n, ips in delta["addresses"].items() if n in mine}
        delta["_unsure"] = self.unsure
        return delta

    def absorb(self, delta: dict[str, Any]) -> None:
        unsure = delta.pop("_unsure", {})
        super().absorb(delta)
        for status, n in unsure.items():
            self.unsure[status] = self.unsure.get(status, 0) + int(n)

    async def finish(self) -> None:
        unanswered(self.ctx, self.unsure, "resolver A,AAAA,CNAME")
        # Mail, name servers and TXT (SPF, verification tokens) of the roots only.
        await resolve_names(self.ctx, self.found.roots, dns_options(self.ctx, ("MX", "NS", "TXT")), key="mx:")
