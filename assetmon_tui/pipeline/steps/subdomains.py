"""Names under the roots: certificate transparency, wordlist, certificates."""

from __future__ import annotations

from functools import partial

from ...scanners.subdomains import Resume, SubdomainOptions, discover
from ...scanners.udp_resolver import ServerStats
from ..persist import save_names
from .base import Step
from .dns import dns_options


class Subdomains(Step):
    name = "subdomains"
    inputs = ("roots",)
    outputs = ("addresses", "wildcards")  # new names, addresses still unknown
    saves = ("host",)
    growing = True  # zones found on the way (certificates, CT, empty non-terminals) are brute forced too

    async def run(self) -> None:
        options = SubdomainOptions(
            ct_url=self.ctx.setting("ct_url"),
            wordlist_path=self.ctx.setting("wordlist") or None,
            dns=dns_options(self.ctx, ("A", "AAAA")),
            report=lambda source, status, reason: self.ctx.outcome(self.name, source, status, reason),
            dns_rate=float(self.ctx.setting("dns_rate") or 0),
            dns_pace=self.pace,
        )
        self.paces: list[ServerStats] = []
        # A resumed step skips the CT searches that ended and the words already
        # tried; the names found before are followed up again (zones,
        # certificates) but neither yielded nor counted twice.
        resume = self.resumed()
        options.resume = resume
        known = [n for n in self.found.addresses if n not in self.found.roots]
        scope = self.ctx.scope.__contains__
        async with self.saver(partial(save_names, self.ctx), 200) as batch:
            async for found in discover(
                self.found.roots, options, scope, self.tick(), seeds=known, excludes_below=self.ctx.scope.excludes_below
            ):
                if found.source == "wildcard":
                    self.found.wildcards.add(found.name)
                elif found.name not in self.found.addresses:
                    self.found.addresses[found.name] = set()
                    self.ctx.progress.count("subdomains")
                    await batch.add(found.name)  # saved as found: a crash keeps what was found
                resume.pending.discard(found.name)
        if self.paces:  # the brute force's average, once it is over
            self.ctx.progress.counters["dns_qps"] = round(sum(s.average for s in self.paces))

    def pace(self, stats: list[ServerStats]) -> None:
        """The brute force's DNS pace in the progress counters: queries a second,
        and the limit in force while a nameserver is slowed down (back-off)."""
        self.paces = stats
        counters = self.ctx.progress.counters
        counters["dns_qps"] = round(sum(s.rate for s in stats))
        slowed = [s.limit for s in stats if s.backoffs and s.limit is not None]
        if slowed:
            counters["dns_limit"] = round(sum(slowed))
        else:
            counters.pop("dns_limit", None)

    def resumed(self) -> Resume:
        """The scanner's resume state from the checkpoint, tracked by it from now on."""
        checkpoint = self.ctx.checkpoint
        cursor = checkpoint.cursor if checkpoint else {}
        resume = Resume(
            brute={str(zone): int(n) for zone, n in cursor.get("brute", {}).items()},
            ct=set(cursor.get("ct", [])),
            followed=set(cursor.get("followed", [])),
            unanswered={str(zone): int(n) for zone, n in cursor.get("unanswered", {}).items()},
        )
        for name in cursor.get("pending", []):  # found and checkpointed, never taken: take them now
            self.found.addresses.setdefault(str(name), set())
        if checkpoint:
            checkpoint.track(
                lambda: {
                    "brute": dict(resume.brute),
                    "ct": sorted(resume.ct),
                    "pending": sorted(resume.pending),
                    "followed": sorted(resume.followed),
                    "unanswered": dict(resume.unanswered),
                }
            )
        return resume
