"""A small estate on loopback for end-to-end tests: a DNS server naming two
hosts, and an HTTP server on 127.0.0.7 (where nothing else listens)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .loopback import FakeDNS, HttpServer, page

if TYPE_CHECKING:
    from assetmon_tui.dispatch import Dispatcher

WEB_ADDRESS = "127.0.0.7"
HOME = "<html><title>Scan [bold]Test[/] \x1b]0;x\x07Home</title></html>"  # markup and an escape: hostile text


async def slow_page(request, writer, seconds: float = 60.0) -> None:
    """Answers only after a long time: keeps a scan busy until it is cancelled."""
    await asyncio.sleep(seconds)
    await page("<title>late</title>")(request, writer)


def gated_page(gate: threading.Event):
    """The home page, answered once `gate` is set: holds a scan in its HTTP step
    until a test has seen it running."""
    home = page(HOME)

    async def handle(request, writer) -> None:
        while not gate.is_set():
            await asyncio.sleep(0.02)
        await home(request, writer)

    return handle


@dataclass
class Estate:
    dns: FakeDNS
    web: HttpServer

    @property
    def targets(self) -> list[str]:
        return ["www.scan.test", "api.scan.test"]

    @property
    def url(self) -> str:
        """The slow page as a URL target (a port scan would not see it as web)."""
        return f"http://www.scan.test:{self.web.port}/"

    def options(self, **extra) -> dict:
        return {"nameservers": [self.dns.address], "ports": str(self.web.port), **extra}


@contextlib.contextmanager
def estate(slow: bool = False, gate: threading.Event | None = None):
    """`slow`: the home page answers only after a minute; `gate`: once it is set."""
    routes = {"/": slow_page if slow else gated_page(gate) if gate else page(HOME)}
    with HttpServer(routes, host=WEB_ADDRESS) as web:
        zone = {
            "www.scan.test": {"A": [WEB_ADDRESS]},
            "api.scan.test": {"CNAME": ["www.scan.test"]},
        }
        with FakeDNS(zone) as dns:
            yield Estate(dns, web)


def make_project(name: str = "acme", targets: list[str] | None = None) -> int:
    from assetmon_tui.store import repo

    project = repo.create_project(name)
    repo.add_targets(project.id, targets or ["www.scan.test", "api.scan.test"])
    return project.id


def run_to_end(dispatcher: Dispatcher, scan_id: int, timeout: float = 60.0):
    """Poll like the TUI does; return the final progress and what was seen on the way."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, progress = dispatcher.poll(scan_id)
        snapshot = (progress.state, tuple((n, m.status) for n, m in progress.modules.items()))
        if not seen or seen[-1] != snapshot:
            seen.append(snapshot)
        if not progress.active:
            return progress, seen
        time.sleep(0.02)
    raise AssertionError(f"scan {scan_id} did not finish; saw {seen}")


@contextlib.contextmanager
def lab_with_short_wordlist(tmp_path, monkeypatch, hosts: int, process: bool = True):
    """The lab, with the settings that keep a scan on it and quick: its CT
    source, and a wordlist of its guessable names plus two decoys. In a
    process of its own (a thread scan here gets a core to itself), unless the
    test reads what only the in-process `Lab` has (its DNS query log)."""
    from assetmon_tui.core.config import get_settings
    from assetmon_tui.lab import Lab
    from assetmon_tui.lab.process import LabProcess

    with LabProcess(hosts=hosts) if process else Lab(hosts=hosts) as lab:
        words = [n.split(".")[0] for n in lab.estate.names_from("wordlist")] + ["nothere", "decoy-7"]
        (tmp_path / "words.txt").write_text("\n".join(words))
        monkeypatch.setenv("ASSETMON_WORDLIST", str(tmp_path / "words.txt"))
        monkeypatch.setenv("ASSETMON_CT_URL", lab.info["ct_url"])
        get_settings.cache_clear()
        yield lab
