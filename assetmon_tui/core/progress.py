"""The progress protocol shared by both backends.

The pipeline fills a `Progress` and calls `report(progress)`. The Celery task
stores `progress.to_dict()` with `update_state`; the thread backend keeps the
object in memory. The TUI reads either through `Progress.from_dict`.

A module's `total` is final (`total_final`) when the step knew all its work
before it started (names to resolve, address x port probes, URLs to probe).
Discovery steps (subdomains, js) find more work as they go: their total is a
lower bound until they end, and readers show "n of ≥N" and no fraction.
Payloads from before `total_final` (and keys from later versions) still read.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

ACTIVE_STATES = ("queued", "running", "cancelling")
FINAL_STATES = ("done", "failed", "cancelled")
GAUGES = ("dns_qps", "dns_limit", "http_slowed")  # counters that are rates, not counts: never summed over chunks


@dataclass
class ModuleProgress:
    status: str = "pending"  # pending | running | done | failed | skipped
    done: int = 0
    total: int = 0
    total_final: bool = True  # False: more work may still be found (the total only grows)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "skipped")

    @property
    def fraction(self) -> float:
        if self.finished:
            return 1.0
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def determinate(self) -> bool:
        """Whether `fraction` means something: the work is known (or over)."""
        return self.finished or (self.total_final and self.total > 0)

    def count_text(self) -> str:
        """ "45/100", "45 of ≥100" while the total may still grow, else the status."""
        if not self.total:
            return self.status
        if self.total_final or self.finished:
            return f"{self.done:,}/{self.total:,}"
        return f"{self.done:,} of ≥{self.total:,}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModuleProgress:
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Progress:
    scan_id: int
    state: str = "queued"
    modules: dict[str, ModuleProgress] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    message: str = ""
    warnings: list[str] = field(default_factory=list)  # sources that failed or did not run (one line each)
    workers: list[str] = field(default_factory=list)  # who works on it now: "host:pid #12 ports chunk 3/8 40/120"
    started_at: float | None = None
    updated_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def elapsed(self) -> float:
        if self.started_at is None:
            return 0.0
        return (self.finished_at or time.time()) - self.started_at

    def module(self, name: str) -> ModuleProgress:
        return self.modules.setdefault(name, ModuleProgress())

    def end(self, state: str, error: str = "", at: float | None = None) -> None:
        """The one way a scan's progress ends: the runner calls it, and so does a
        poll that sees the row ended before the runner's last report arrived."""
        self.state = state
        self.finished_at = at or self.finished_at or time.time()
        self.message = error or {"done": "finished", "cancelled": "cancelled"}.get(state, state)
        if state == "done" and self.warnings:
            self.message = f"finished with {len(self.warnings)} warning(s)"

    def warn(self, line: str) -> None:
        if line not in self.warnings:
            self.warnings.append(line)

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def gauges(self) -> dict[str, int]:
        """The rates among the counters (what a chunk's runner tells the scan's)."""
        return {name: self.counters[name] for name in GAUGES if name in self.counters}

    def set_gauges(self, gauges: Mapping[str, int]) -> None:
        """The rates now, as the runners of a step's chunks tell them (summed over
        those running at once; none running: none shown)."""
        for name in GAUGES:
            if name in gauges:
                self.counters[name] = gauges[name]
            else:
                self.counters.pop(name, None)

    def to_dict(self) -> dict[str, Any]:
        # JSON-ready: Celery's result backend stores it as JSON
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Progress:
        fields = dict(data)
        fields["modules"] = {k: ModuleProgress.from_dict(v) for k, v in fields.get("modules", {}).items()}
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in fields.items() if k in known})
