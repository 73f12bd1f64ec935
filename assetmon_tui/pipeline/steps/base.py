"""What a step is: one module of a scan (`core.modules` names them) that reads
the shared `Found` state, runs a scanner, adds to the state and saves rows."""

from __future__ import annotations

from typing import ClassVar

from ..context import Found, ScanContext, Tick


class Step:
    """One module of a scan, run once per scan in registry order.

    `inputs` and `outputs` name the `Found` fields the step reads and the ones
    it adds to; `saves` names the store tables it upserts into. Together they
    say what a checkpoint between steps must hold, and what a worker running
    part of a step needs and sends back."""

    name: ClassVar[str]
    inputs: ClassVar[tuple[str, ...]] = ()
    outputs: ClassVar[tuple[str, ...]] = ()
    saves: ClassVar[tuple[str, ...]] = ()

    def __init__(self, ctx: ScanContext) -> None:
        self.ctx = ctx

    @property
    def found(self) -> Found:
        return self.ctx.found

    def tick(self) -> Tick:
        """This step's progress callback for the scanner."""
        return self.ctx.ticker(self.name)

    async def run(self) -> None:
        raise NotImplementedError
