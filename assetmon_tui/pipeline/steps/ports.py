"""TCP connect scan of every known address, with banners."""

from __future__ import annotations

from functools import partial

from ...scanners.ports import PortOptions, PortResult, parse_ports, scan
from ..persist import BatchSaver, save_services
from .base import Step


class Ports(Step):
    name = "ports"
    inputs = ("addresses", "direct")
    outputs = ("port_scanned", "open_ports")
    saves = ("host", "service")

    def addresses(self) -> list[str]:
        resolved = {a for addrs in self.found.addresses.values() for a in addrs}
        return sorted(resolved | self.found.direct)

    async def run(self) -> None:
        settings = self.ctx.settings
        ports = parse_ports(self.ctx.options.get("ports") or settings.ports)
        options = PortOptions(
            concurrency=settings.port_concurrency, timeout=settings.port_timeout, rate=settings.port_rate
        )
        addresses = self.addresses()
        self.found.port_scanned.update(addresses)
        async with BatchSaver[PortResult](partial(save_services, self.ctx), size=500) as saver:
            async for result in scan(addresses, ports, options, self.tick()):
                self.found.open_ports[result.address][result.port] = result.service
                self.ctx.progress.count("services")
                await saver.add(result)
