"""TCP connect scan of every known address, with banners; chunks of addresses."""

from __future__ import annotations

from functools import partial

from ...scanners.ports import PortOptions, banner_budget, parse_ports, scan
from ..persist import save_services
from .base import ChunkedStep


class Ports(ChunkedStep):
    name = "ports"
    inputs = ("addresses", "direct")
    outputs = ("port_scanned", "open_ports")
    chunk_outputs = ("open_ports", "answered")
    saves = ("host", "service")
    unit_seconds = 0.0005  # one probe; the first chunks measure the real pace
    min_units = 1000  # a probe costs microseconds, a chunk's start a tenth of a second

    def ports(self) -> list[int]:
        return parse_ports(self.ctx.setting("ports"))

    def items(self) -> list[str]:
        resolved = {a for addrs in self.found.addresses.values() for a in addrs}
        addresses = sorted(resolved | self.found.direct)
        self.found.port_scanned.update(addresses)  # every address is covered, whichever chunk scans it
        return addresses

    def units(self, items: list[str]) -> int:
        return len(items) * len(self.ports())

    async def work(self, items: list[str]) -> None:
        ctx = self.ctx
        ports = self.ports()
        timeout = float(ctx.setting("port_timeout"))
        options = PortOptions(
            concurrency=int(ctx.setting("port_concurrency")),  # a project may set it
            timeout=timeout,
            rate=int(ctx.setting("port_rate")),
            banner_timeout=banner_budget(timeout),  # a slow network's longer timeout: longer banner waits too
        )
        # The bar counts probes; banner grabs show beside it (the banner phase).
        tick, probes = self.tick(), len(items) * len(ports)
        if probes:
            tick(0, probes)  # the whole total before the first probe

        def progress(done: int, total: int) -> None:
            tick(min(done, probes), probes)

        def banners(done: int, found: int) -> None:
            if found:
                ctx.progress.message = f"ports: banners {done:,}/{found:,}"

        async with self.saver(partial(save_services, ctx), 500) as batch:
            async for result in scan(items, ports, options, progress, self.found.answered, banners):
                self.found.open_ports[result.address][result.port] = result.service
                ctx.progress.count("services")
                await batch.add(result)

    async def finish(self) -> None:
        addresses = sorted(self.found.port_scanned)
        silent = sorted(set(addresses) - self.found.answered)
        if silent:
            self.ctx.outcome(
                self.name,
                "port scan",
                "failed",
                f"{len(silent)} of {len(addresses)} addresses did not answer on any port, e.g. "
                f"{', '.join(silent[:3])}; their ports keep what they had",
            )
