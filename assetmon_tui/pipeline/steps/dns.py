"""A, AAAA and CNAME of every in-scope name; MX, NS and TXT of the roots."""

from __future__ import annotations

from functools import partial

from ...scanners.dns import DnsOptions, DnsResult, resolve
from ..context import ScanContext, Tick
from ..persist import BatchSaver, save_dns
from .base import Step


def dns_options(ctx: ScanContext, rtypes: tuple[str, ...] = ("A", "AAAA", "CNAME")) -> DnsOptions:
    return DnsOptions(
        nameservers=ctx.nameservers,
        rtypes=rtypes,
        concurrency=ctx.settings.dns_concurrency,
        timeout=ctx.settings.dns_timeout,
        retries=ctx.settings.dns_retries,
    )


async def resolve_names(ctx: ScanContext, names: list[str], options: DnsOptions, progress: Tick | None = None) -> None:
    """Resolve and save `names`; their addresses and CNAMEs go to the state
    (the http step resolves the names it reveals with this too)."""
    async with BatchSaver[DnsResult](partial(save_dns, ctx), size=200) as saver:
        async for result in resolve(names, options, progress):
            ctx.found.addresses[result.name].update(result.addresses)
            if result.cnames:
                ctx.found.cnamed.append(result)
            await saver.add(result)


class Dns(Step):
    name = "dns"
    inputs = ("addresses", "roots")
    outputs = ("addresses", "cnamed")
    saves = ("host", "dnsrecord")

    async def run(self) -> None:
        names = sorted(n for n in self.found.addresses if n in self.ctx.scope)
        await resolve_names(self.ctx, names, dns_options(self.ctx), self.tick())
        # Mail, name servers and TXT (SPF, verification tokens) of the roots only.
        await resolve_names(self.ctx, self.found.roots, dns_options(self.ctx, ("MX", "NS", "TXT")))
