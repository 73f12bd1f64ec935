"""A, AAAA and CNAME of every in-scope name (found this scan or known from
earlier ones); MX, NS and TXT of the roots."""

from __future__ import annotations

import asyncio
from functools import partial

from ...scanners.dns import UNCERTAIN, DnsOptions, resolve
from ...store.snapshots import known_names
from ..context import ScanContext, Tick
from ..persist import save_dns
from .base import Step, finished, mark, offset, saver


def dns_options(ctx: ScanContext, rtypes: tuple[str, ...] = ("A", "AAAA", "CNAME")) -> DnsOptions:
    return DnsOptions(
        nameservers=ctx.nameservers,
        rtypes=rtypes,
        concurrency=int(ctx.setting("dns_concurrency")),  # a profile may set it
        timeout=ctx.settings.dns_timeout,
        retries=ctx.settings.dns_retries,
    )


async def resolve_names(
    ctx: ScanContext,
    names: list[str],
    options: DnsOptions,
    progress: Tick | None = None,
    key: str = "",
    source: str = "resolver",
) -> None:
    """Resolve and save `names` (less those a resumed step already did, marked
    `key + name`); their addresses and CNAMEs go to the state (the http step
    resolves the names it reveals with this too). Names the resolver gave no
    definitive answer for make `source` a failed one: they keep what they had."""
    done = finished(ctx)
    todo = [n for n in names if key + n not in done]
    unsure: dict[str, int] = {}
    if progress is not None and names:
        progress(len(names) - len(todo), len(names))  # the whole total before the first answer
    async with saver(ctx, partial(save_dns, ctx), 200) as batch:
        async for result in resolve(todo, options, offset(progress, len(names) - len(todo))):
            ctx.found.addresses[result.name].update(result.addresses)
            if result.cnames:
                ctx.found.cnamed.append(result)
            if result.status in UNCERTAIN or result.status == "partial":
                unsure[result.status] = unsure.get(result.status, 0) + 1
            mark(ctx, key + result.name)
            await batch.add(result)
    if unsure:
        how = ", ".join(f"{n} {status}" for status, n in sorted(unsure.items()))
        reason = (
            f"{sum(unsure.values())} of {len(todo)} names got no definitive answer ({how}): they keep what they had"
        )
        ctx.outcome("dns", f"{source} {','.join(options.rtypes)}", "failed", reason)


class Dns(Step):
    name = "dns"
    inputs = ("addresses", "roots")
    outputs = ("addresses", "cnamed")
    saves = ("host", "dnsrecord")

    async def run(self) -> None:
        # What the project already knows is looked at again, whatever found it
        # (and whether or not a discovery source ran or worked this time): a
        # known name is gone only when DNS says so.
        roots = self.found.roots
        for name in await asyncio.to_thread(known_names, self.ctx.project_id):
            if name in self.ctx.scope and any(name == r or name.endswith("." + r) for r in roots):
                self.found.addresses.setdefault(name, set())
        names = sorted(n for n in self.found.addresses if n in self.ctx.scope)
        await resolve_names(self.ctx, names, dns_options(self.ctx), self.tick())
        # Mail, name servers and TXT (SPF, verification tokens) of the roots only.
        await resolve_names(self.ctx, self.found.roots, dns_options(self.ctx, ("MX", "NS", "TXT")), key="mx:")
