"""Dangling CNAMEs: names pointing at a provider where anyone can claim them."""

from __future__ import annotations

from functools import partial

from ...scanners.http import HttpOptions
from ...scanners.takeover import TakeoverFinding, check_many
from ..persist import BatchSaver, save_takeovers
from .base import Step
from .dns import dns_options


class Takeover(Step):
    name = "takeover"
    inputs = ("cnamed",)
    saves = ("host", "finding")

    async def run(self) -> None:
        settings = self.ctx.settings
        http = HttpOptions(timeout=settings.http_timeout, max_body=settings.http_max_body)
        async with BatchSaver[TakeoverFinding](partial(save_takeovers, self.ctx), size=100) as saver:
            async for finding in check_many(self.found.cnamed, dns_options(self.ctx), http):
                self.ctx.progress.count("findings")
                await saver.add(finding)
