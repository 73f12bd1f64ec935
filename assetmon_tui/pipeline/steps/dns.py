"""A, AAAA and CNAME of every in-scope name; MX, NS and TXT of the roots."""

from __future__ import annotations

from functools import partial

from ...scanners.dns import DnsOptions, resolve
from ..context import ScanContext, Tick
from ..persist import save_dns
from .base import Step, finished, mark, offset, saver


def dns_options(ctx: ScanContext, rtypes: tuple[str, ...] = ("A", "AAAA", "CNAME")) -> DnsOptions:
    return DnsOptions(
        nameservers=ctx.nameservers,
        rtypes=rtypes,
        concurrency=ctx.settings.dns_concurrency,
        timeout=ctx.settings.dns_timeout,
        retries=ctx.settings.dns_retries,
    )


async def resolve_names(
    ctx: ScanContext, names: list[str], options: DnsOptions, progress: Tick | None = None, key: str = ""
) -> None:
    """Resolve and save `names` (less those a resumed step already did, marked
    `key + name`); their addresses and CNAMEs go to the state (the http step
    resolves the names it reveals with this too)."""
    done = finished(ctx)
    todo = [n for n in names if key + n not in done]
    async with saver(ctx, partial(save_dns, ctx), 200) as batch:
        async for result in resolve(todo, options, offset(progress, len(names) - len(todo))):
            ctx.found.addresses[result.name].update(result.addresses)
            if result.cnames:
                ctx.found.cnamed.append(result)
            mark(ctx, key + result.name)
            await batch.add(result)


class Dns(Step):
    name = "dns"
    inputs = ("addresses", "roots")
    outputs = ("addresses", "cnamed")
    saves = ("host", "dnsrecord")

    async def run(self) -> None:
        names = sorted(n for n in self.found.addresses if n in self.ctx.scope)
        await resolve_names(self.ctx, names, dns_options(self.ctx), self.tick())
        # Mail, name servers and TXT (SPF, verification tokens) of the roots only.
        await resolve_names(self.ctx, self.found.roots, dns_options(self.ctx, ("MX", "NS", "TXT")), key="mx:")
