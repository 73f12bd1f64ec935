"""What a step is: one module of a scan (`core.modules` names them) that reads
the shared `Found` state, runs a scanner, adds to the state and saves rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from ..context import Found, ScanContext, Tick
from ..persist import BatchSaver

T = TypeVar("T")


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
    # True for discovery steps, whose work grows as they find it: their
    # progress total is a lower bound (`ModuleProgress.total_final` False)
    # until they end. The others report their whole total before they start.
    growing: ClassVar[bool] = False

    def __init__(self, ctx: ScanContext) -> None:
        self.ctx = ctx

    @property
    def found(self) -> Found:
        return self.ctx.found

    def tick(self) -> Tick:
        """This step's progress callback for the scanner."""
        return self.ctx.ticker(self.name)

    def saver(self, save: Callable[[list[T]], None], size: int) -> BatchSaver[T]:
        """The step's batched writer, checkpointing as it commits."""
        return saver(self.ctx, save, size)

    async def run(self) -> None:
        raise NotImplementedError


class ChunkedStep(Step):
    """A step whose work is a list of items (names, addresses, URLs) that can be
    cut into chunks any worker runs (`pipeline.fanout`). The items are fixed
    when the step starts; each chunk starts from the `inputs` of the scan's
    state and sends back the `chunk_outputs` fields it added (`delta`), which
    the scan merges (`absorb`) before `finish` runs once, in the scan's runner."""

    chunk_outputs: ClassVar[tuple[str, ...]] = ()
    unit_seconds: ClassVar[float] = 0.01  # a first guess of one unit's time, until chunks measured it
    # The smallest chunk worth its fixed cost (a context from the checkpoint, a
    # resolver, checks a chunk repeats): smaller ones only add tail latencies.
    min_units: ClassVar[int] = 1

    def items(self) -> list[str]:
        """The keys of the step's work, in a stable order."""
        raise NotImplementedError

    def units(self, items: list[str]) -> int:
        """The progress total of `items` (known before they start)."""
        return len(items)

    async def work(self, items: list[str]) -> None:
        """Do the work of `items`: save rows, add to `found`."""
        raise NotImplementedError

    def delta(self, items: list[str]) -> dict[str, Any]:
        """What this chunk added to the state (JSON)."""
        from ..checkpoint import encode_fields

        return encode_fields(self.found, self.chunk_outputs)

    def absorb(self, delta: dict[str, Any]) -> None:
        """Merge one chunk's `delta` into the scan's state."""
        from ..checkpoint import merge_fields

        merge_fields(self.found, delta)

    async def finish(self) -> None:
        """After every chunk: what needs the whole step (outcomes, a last round)."""

    async def run(self) -> None:  # the whole step in one go (a scan runner with no chunks)
        items = self.items()
        await self.work(items)
        await self.finish()


def saver(ctx: ScanContext, save: Callable[[list[T]], None], size: int) -> BatchSaver[T]:
    return BatchSaver(save, size, checkpoint=ctx.checkpoint)


def finished(ctx: ScanContext) -> set[str]:
    """Keys of the items the current step already finished (on a resume)."""
    return set(ctx.checkpoint.items) if ctx.checkpoint else set()


def mark(ctx: ScanContext, key: str) -> None:
    if ctx.checkpoint is not None:
        ctx.checkpoint.mark(key)


def offset(tick: Tick | None, skipped: int) -> Tick | None:
    """A scanner's progress over what is left, shown over the whole step."""
    if tick is None or not skipped:
        return tick
    return lambda done, total: tick(done + skipped, total + skipped)
