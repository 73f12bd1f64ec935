"""The scan pipeline: `run_scan` runs a queued scan's steps (one per module of
`core.modules`, in its order) over shared state, reporting progress and saving
results as they are found.

    run.py      lifecycle: claim, progress reports, heartbeat, cancel, finish
    fanout.py   big steps as chunks any worker runs (`run_chunk`), merged when the last one settles
    context.py  the scan's shared state (`ScanContext`, `Found`) and its seeding
    persist.py  scanner results -> rows, and the one batched writer
    steps/      one module per step, `STEPS` maps names to them (each imported when its step runs)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .context import Found, ScanContext
from .run import REPORT_EVERY, Reporter, run_chunk, run_scan
from .steps import STEPS, Step

if TYPE_CHECKING:
    from .steps.js import cpu_pool


def __getattr__(name: str) -> Any:
    if name == "cpu_pool":  # the js step's process pool: its module imports the secrets engine
        from .steps.js import cpu_pool

        return cpu_pool
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["REPORT_EVERY", "STEPS", "Found", "Reporter", "ScanContext", "Step", "cpu_pool", "run_chunk", "run_scan"]
