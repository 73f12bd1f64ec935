"""Names under the roots: certificate transparency, wordlist, certificates."""

from __future__ import annotations

from ...scanners.subdomains import SubdomainOptions, discover
from .base import Step
from .dns import dns_options


class Subdomains(Step):
    name = "subdomains"
    inputs = ("roots",)
    outputs = ("addresses", "wildcards")  # new names, addresses still unknown

    async def run(self) -> None:
        settings = self.ctx.settings
        options = SubdomainOptions(
            ct_url=settings.ct_url,
            wordlist_path=settings.wordlist or None,
            dns=dns_options(self.ctx, ("A", "AAAA")),
        )
        async for found in discover(self.found.roots, options, self.ctx.scope.__contains__, self.tick()):
            if found.source == "wildcard":
                self.found.wildcards.add(found.name)
            elif found.name not in self.found.addresses:
                self.found.addresses[found.name] = set()
                self.ctx.progress.count("subdomains")
