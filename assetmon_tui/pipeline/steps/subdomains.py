"""Names under the roots: certificate transparency, wordlist, certificates.

The roots' brute force is the step's big part: its words are the chunks'
items (each chunk tries its words under every root, with its own wildcard
check). Everything else (CT, tools, certificates, zones found on the way and
their shorter brute force, following found names up) runs once, in `finish`,
with the roots' words marked tried."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from functools import partial

from ...core.config import SettingsError
from ...scanners.passive import configured
from ...scanners.subdomains import Found, Resume, SubdomainOptions, discover, load_wordlist
from ...scanners.udp_resolver import ServerStats
from ..persist import save_names
from .base import ChunkedStep, offset
from .dns import dns_options, show_pace

PERMUTATIONS = 1000  # candidates from the names found, for the whole scan (the roots' first)


class Subdomains(ChunkedStep):
    name = "subdomains"
    inputs = ("roots",)
    outputs = ("addresses", "wildcards")  # new names, addresses still unknown
    chunk_outputs = ("addresses", "wildcards")
    saves = ("host",)
    growing = True  # zones found on the way (certificates, CT, empty non-terminals) are brute forced too
    unit_seconds = 0.002  # one lookup
    min_units = 250  # each chunk asks every zone's wildcard again (a timeout or two behind a lossy resolver)

    def options(self) -> SubdomainOptions:
        try:  # the passive API sources with the keys and base URLs configured
            passive = configured()
        except SettingsError as exc:  # a malformed entry: the scan goes on without them and says what to fix
            passive = ()
            self.ctx.outcome(self.name, "passive sources", "failed", str(exc))
        # A source without a key is not a failure of this scan (most users have
        # none): said once, as a note, not a warning on every scan.
        keyless = [p.name for p in passive if not p.keys]
        if keyless:
            why = f"no key for {', '.join(keyless)}: not asked ([passive.<name>] keys in the config file)"
            self.ctx.outcome(self.name, "passive sources", "ok", why)
        passive = tuple(p for p in passive if p.keys)
        return SubdomainOptions(
            ct_url=self.ctx.setting("ct_url"),
            wordlist_path=self.ctx.setting("wordlist") or None,
            dns=dns_options(self.ctx, ("A", "AAAA")),
            report=lambda source, status, reason: self.ctx.outcome(self.name, source, status, reason),
            dns_rate=float(self.ctx.setting("dns_rate") or 0),
            dns_pace=self.pace,
            records=True,
            axfr=True,
            ptr=True,
            permutations=PERMUTATIONS,
            passive=passive,
        )

    def items(self) -> list[str]:
        return load_wordlist(self.ctx.setting("wordlist") or None) if self.found.roots else []

    def units(self, items: list[str]) -> int:
        return len(items) * max(1, len(self.found.roots))

    async def work(self, items: list[str]) -> None:
        """These words under every root, and nothing else."""
        options = replace(
            self.options(),
            words=items,
            follow=False,
            ct=False,
            san=False,
            tools=(),
            records=False,
            axfr=False,
            ptr=False,
            permutations=0,
            passive=(),
        )  # (the other sources run once, in finish)
        await self.take(
            discover(
                self.found.roots,
                options,
                self.ctx.scope.__contains__,
                self.tick(),
                excludes_below=self.ctx.scope.excludes_below,
            ),
            Resume(),
        )

    async def finish(self) -> None:
        """The rest of discovery, the roots' words already tried."""
        self.paces: list[ServerStats] = []
        options = self.options()
        # A resumed step skips the CT and passive searches that ended and the
        # words already tried; the names found before are followed up again
        # (zones, certificates) but neither yielded nor counted twice.
        resume = self.resumed()
        words = len(load_wordlist(options.wordlist_path))
        for root in self.found.roots:
            resume.brute[root] = max(resume.brute.get(root, 0), words)
        options.resume = resume
        known = [n for n in self.found.addresses if n not in self.found.roots]
        before = self.ctx.progress.module(self.name).done  # the chunks' lookups
        found = discover(
            self.found.roots,
            options,
            self.ctx.scope.__contains__,
            offset(self.tick(), before),
            seeds=known,
            excludes_below=self.ctx.scope.excludes_below,
            addresses=sorted(self.found.direct),  # their PTR names, when in scope
        )
        await self.take(found, resume)
        if self.paces:  # the brute force's average, once it is over
            self.ctx.progress.counters["dns_qps"] = round(sum(s.average for s in self.paces))
        self.ctx.progress.counters.pop("dns_limit", None)  # a back-off of this step is over with it

    async def take(self, found: AsyncIterator[Found], resume: Resume) -> None:
        """Names as they are found: into the state, saved at once (a crash keeps them)."""
        async with self.saver(partial(save_names, self.ctx), 200) as batch:
            async for item in found:
                if item.source == "wildcard":
                    self.found.wildcards.add(item.name)
                elif item.name not in self.found.addresses:
                    self.found.addresses[item.name] = set()
                    self.ctx.progress.count("subdomains")
                    await batch.add(item.name)
                resume.pending.discard(item.name)

    def pace(self, stats: list[ServerStats]) -> None:
        """The brute force's DNS pace in the progress counters (kept for its average at the end)."""
        self.paces = stats
        show_pace(self.ctx.progress.counters, stats)

    def resumed(self) -> Resume:
        """The scanner's resume state from the checkpoint, tracked by it from now on."""
        checkpoint = self.ctx.checkpoint
        cursor = checkpoint.cursor if checkpoint else {}
        resume = Resume(
            brute={str(zone): int(n) for zone, n in cursor.get("brute", {}).items()},
            ct=set(cursor.get("ct", [])),
            passive=set(cursor.get("passive", [])),
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
                    "passive": sorted(resume.passive),
                    "pending": sorted(resume.pending),
                    "followed": sorted(resume.followed),
                    "unanswered": dict(resume.unanswered),
                }
            )
        return resume
