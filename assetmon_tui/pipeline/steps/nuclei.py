"""nuclei on every URL the scan probed, when the binary is there; its
templates' version is recorded, so a diff can tell new templates from a
changed target."""

from __future__ import annotations

import asyncio
from functools import partial

from ...events import NUCLEI_TEMPLATES, nuclei_templates
from ...scanners.nuclei import NucleiFinding, NucleiOptions, binary, run, versions
from ...store import repo
from ..persist import BatchSaver, save_nuclei
from .base import Step


class Nuclei(Step):
    name = "nuclei"
    inputs = ("probed",)
    outputs = ("nuclei", "nuclei_templates")
    saves = ("host", "finding")

    async def run(self) -> None:
        ctx = self.ctx
        path = binary(str(ctx.setting("nuclei_path")))
        if path is None:
            ctx.outcome(self.name, "nuclei", "skipped", f"{ctx.setting('nuclei_path')} not found on PATH")
            return
        urls = sorted(u for u in self.found.probed if u.startswith(("http://", "https://")))
        engine, templates = await versions(path)
        wanted = [t.strip() for t in str(ctx.setting("nuclei_templates")).split(",") if t.strip()]
        self.found.nuclei_templates = templates
        set_name = ",".join(wanted) or "default"
        ctx.outcome(
            self.name, NUCLEI_TEMPLATES, "ok", f"templates {templates or '?'} (engine {engine or '?'}, set {set_name})"
        )
        previous = await asyncio.to_thread(repo.previous_scan, ctx.project_id, ctx.scan_id)
        same = previous is None or nuclei_templates(previous) in ("", templates)
        options = NucleiOptions(
            path,
            wanted,
            str(ctx.setting("nuclei_severity")),
            int(ctx.setting("nuclei_rate")),
            float(ctx.setting("nuclei_timeout")),
        )
        tick = self.tick()
        tick(0, len(urls))
        try:
            async with BatchSaver[NucleiFinding](partial(save_nuclei, ctx), size=50) as saver:
                async for finding in run(urls, options):
                    ctx.progress.count("findings")
                    await saver.add(finding)
        except RuntimeError as exc:
            ctx.outcome(self.name, "nuclei", "failed", str(exc))
            return
        tick(len(urls), len(urls))
        if same:  # what earlier templates found is judged only by the same templates
            self.found.nuclei = set(urls)
        ctx.outcome(self.name, "nuclei", "ok")
