"""TCP connect scan of every known address, with banners."""

from __future__ import annotations

from functools import partial

from ...scanners.ports import PortOptions, banner_budget, parse_ports, scan
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
        ctx = self.ctx
        ports = parse_ports(ctx.setting("ports"))
        timeout = float(ctx.setting("port_timeout"))
        options = PortOptions(
            concurrency=int(ctx.setting("port_concurrency")),  # a project may set it
            timeout=timeout,
            rate=int(ctx.setting("port_rate")),
            banner_timeout=banner_budget(timeout),  # a slow network's longer timeout: longer banner waits too
        )
        addresses = self.addresses()
        self.found.port_scanned.update(addresses)
        done = finished(ctx)
        todo = [a for a in addresses if a not in done]
        # Chunks of a few seconds each: the unit a resume repeats at most.
        size = max(1, CHUNK_PROBES // max(1, len(ports)))
        # The work: every probe, plus one banner grab per open port found so
        # far (the total grows as ports are found, never shrinks).
        tick, probes = self.tick(), len(addresses) * len(ports)
        base = (len(addresses) - len(todo)) * len(ports)  # probes (and grabs) of earlier chunks
        counts = {"grabs": 0, "chunk": 0}  # banner grabs of earlier chunks; of this one
        if probes:
            tick(base, probes)  # the whole total before the first probe
        async with self.saver(partial(save_services, ctx), 500) as batch:
            for start in range(0, len(todo), size):
                chunk = todo[start : start + size]
                chunk_probes = len(chunk) * len(ports)

                def progress(done: int, total: int, base: int = base, chunk_probes: int = chunk_probes) -> None:
                    counts["chunk"] = total - chunk_probes
                    tick(base + done, probes + counts["grabs"] + counts["chunk"])

                def banners(done: int, found: int) -> None:  # shown beside the bar: the banner phase
                    if found:
                        ctx.progress.message = f"ports: banners {counts['grabs'] + done:,}/{counts['grabs'] + found:,}"

                async for result in scan(chunk, ports, options, progress, self.found.answered, banners):
                    self.found.open_ports[result.address][result.port] = result.service
                    ctx.progress.count("services")
                    await batch.add(result)
                for address in chunk:
                    mark(ctx, address)
                base += chunk_probes + counts["chunk"]
                counts["grabs"] += counts["chunk"]
        silent = sorted(set(addresses) - self.found.answered)
        if silent:
            self.ctx.outcome(
                self.name,
                "port scan",
                "failed",
                f"{len(silent)} of {len(addresses)} addresses did not answer on any port, e.g. "
                f"{', '.join(silent[:3])}; their ports keep what they had",
            )
