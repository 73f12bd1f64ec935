"""TCP connect scan of every known address, with banners."""

from __future__ import annotations

from functools import partial

from ...scanners.ports import PortOptions, parse_ports, scan
from ..persist import save_services
from .base import Step, finished, mark

CHUNK_PROBES = 20_000  # address x port probes per chunk


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
        ports = parse_ports(self.ctx.setting("ports"))
        options = PortOptions(
            concurrency=settings.port_concurrency, timeout=settings.port_timeout, rate=settings.port_rate
        )
        addresses = self.addresses()
        self.found.port_scanned.update(addresses)
        done = finished(self.ctx)
        todo = [a for a in addresses if a not in done]
        # Chunks of a few seconds each: the unit a resume repeats at most.
        size = max(1, CHUNK_PROBES // max(1, len(ports)))
        tick, total = self.tick(), len(addresses) * len(ports)
        base = (len(addresses) - len(todo)) * len(ports)
        if total:
            tick(base, total)  # the whole total before the first probe
        async with self.saver(partial(save_services, self.ctx), 500) as batch:
            for start in range(0, len(todo), size):
                chunk = todo[start : start + size]

                def progress(done: int, _total: int, base: int = base) -> None:
                    tick(base + done, total)

                async for result in scan(chunk, ports, options, progress, answered=self.found.answered):
                    self.found.open_ports[result.address][result.port] = result.service
                    self.ctx.progress.count("services")
                    await batch.add(result)
                for address in chunk:
                    mark(self.ctx, address)
                base += len(chunk) * len(ports)
        silent = sorted(set(addresses) - self.found.answered)
        if silent:
            self.ctx.outcome(
                self.name,
                "port scan",
                "failed",
                f"{len(silent)} of {len(addresses)} addresses did not answer on any port, e.g. "
                f"{', '.join(silent[:3])}; their ports keep what they had",
            )
