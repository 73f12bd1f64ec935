"""Honest pictures (issue 12), with the real app on a real SQLite store:

- trends on absolute axes: the y axis starts at 0, x is the scans, and every
  metric's last value is there in words (SVG snapshots at 80x24 and 120x40);
- progress that never moves backwards: a step whose total grows (subdomains,
  js) reports a lower bound and the panel shows "n of ≥N" and a pulse; a
  known total is reported before the step's first result;
- readable counts in the scans table ("3 hosts · 4 services · …");
- secrets redacted everywhere unless revealed: the JS file view and the
  detail's context show no other secret of the file in clear.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from support import frozen
from support.frozen import screen_text, settle, showing, until, utc_thread_world
from support.world import World, fake_scan, project_with_targets
from textual.pilot import Pilot

from assetmon_tui.core.config import get_settings
from assetmon_tui.core.progress import ModuleProgress, Progress
from assetmon_tui.events import compute_events
from assetmon_tui.store import leases, repo
from assetmon_tui.store.blobs import save_blob

pytestmark = pytest.mark.one_store

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
MAIN_JS = "https://www.acme.test/main.js"
AWS, AWS_MASK = "AKIAREALSECRETVALUE1", "AKIA…LUE1"
GITHUB, GITHUB_MASK = "ghp_0123456789abcdefghijABCDEFGHIJ012345", "ghp_…2345"
STRIPE, STRIPE_MASK = "sk_live_51HabcdefghijKLMNOPqrstuv", "sk_l…rstuv"
JS = (
    f"function init(){{var cfg={{key:'{AWS}',gh:'{GITHUB}',region:'eu'}};"
    f"var pay='{STRIPE}';if(cfg.key){{return cfg}}return pay}}"
).encode()


@pytest.fixture(autouse=True)
def fixed_world(monkeypatch):
    with utc_thread_world(monkeypatch):
        yield


def freeze_times() -> None:
    frozen.freeze_times()  # on the hour: the trends' scans read 10:00, 11:00, ...


def services(n: int) -> dict[tuple[str, int], str]:
    return {(f"10.0.0.{1 + i // 10}", 8000 + i): "http" for i in range(n)}


@pytest.fixture
def history() -> dict[str, Any]:
    """Six done scans of acme: hosts 3 -> 8, services 20, 20, 21, 21, 22, 22 (small steps)."""
    project = project_with_targets("acme")
    world = World()
    world.js[MAIN_JS] = save_blob(JS)
    scans = []
    for i, count in enumerate((20, 20, 21, 21, 22, 22)):
        now = world.copy()
        now.services = services(count)
        for j in range(i):
            now.names[f"h{j}.acme.test"] = ("ok", [("A", f"10.0.1.{j}")])
        scan = fake_scan(project.id, now)
        compute_events(scan)
        scans.append(scan)
    freeze_times()
    return {"project": project.id, "scans": scans}


@pytest.fixture
def secrets() -> dict[str, Any]:
    """One done scan whose main.js holds three secrets, each a finding of that file."""
    project = project_with_targets("acme")
    world = World()
    world.js[MAIN_JS] = save_blob(JS)
    base = world.findings["fp-aws"]
    # the stored context of each redacts only its own value (as the engine stores it)
    base["context"] = f"var cfg={{key:'{AWS_MASK}',gh:'{GITHUB}'}};\nvar pay='{STRIPE}';"
    world.findings["fp-gh"] = {
        **base,
        "rule": "github_pat",
        "value": GITHUB,
        "redacted": GITHUB_MASK,
        "context": f"var cfg={{key:'{AWS}',gh:'{GITHUB_MASK}'}};",
        "severity": "critical",
    }
    world.findings["fp-stripe"] = {
        **base,
        "rule": "stripe_live_key",
        "value": STRIPE,
        "redacted": STRIPE_MASK,
        "context": f"var pay='{STRIPE_MASK}';",
        "severity": "medium",
    }
    scan = fake_scan(project.id, world)
    compute_events(scan)
    return {"project": project.id, "scan": scan}


def app():
    from assetmon_tui.ui.app import AssetMonApp

    return AssetMonApp()


async def dashboard(pilot: Pilot, scans: int) -> None:
    a: Any = pilot.app
    await until(
        pilot,
        lambda: a.dispatcher is not None and a.project_id is not None and a.query_one("#scans").row_count == scans,
        "the dashboard",
    )


async def trends(pilot: Pilot, scans: int) -> Any:
    await dashboard(pilot, scans)
    await pilot.press("t")
    await until(pilot, lambda: type(pilot.app.screen).__name__ == "TrendsScreen", "the trends screen")
    screen: Any = pilot.app.screen
    await until(pilot, lambda: screen.query_one("#history").row_count == scans, "the scans of the trends")
    return screen


# -- trends ---------------------------------------------------------------------------------------


async def test_trends_are_drawn_on_absolute_axes(history):
    async with app().run_test(size=(80, 24)) as pilot:
        screen = await trends(pilot, 6)
        plot = screen.plot
        assert plot.plt.monitor.ylim[0][0] == 0  # the left y axis as plotext holds it
        assert screen.limits == (0.0, 9.0)  # hosts 3 -> 8: from 0, the top a little above the highest
        text = await showing(pilot, "last scan", "Inventory over done scans: hosts, from 0")
        chart = text.split("\n")[2:15]
        assert any(line.lstrip("│ ").startswith("0┤") for line in chart), "the y axis is labelled from 0"
        assert "#1" in text and "#6" in text  # x: the scans, oldest first
        # the last values in words, with the change since the scan before
        assert "▸ hosts         8     +1" in text
        assert "services     22     +0" in text

        # services: 20 -> 22 is drawn as a small step near the top of an axis from 0, not empty -> full
        await pilot.press("m")
        await showing(pilot, "Inventory over done scans: services, from 0", "range 20–22")
        assert plot.plt.monitor.ylim[0] == [0, screen.limits[1]] and 22 < screen.limits[1] < 25
        assert "▸ services" in screen_text(pilot)
        await pilot.press("m", "m", "m", "m")  # web, findings, events and round to hosts again
        await showing(pilot, "Inventory over done scans: hosts")


def test_trend_ticks():
    from assetmon_tui.ui.screens.trends import x_ticks, y_ticks, y_top

    assert y_top(0) == 1 and y_top(8) == 9 and y_top(22) == pytest.approx(24.2)
    assert y_ticks(y_top(0), 12) == [0, 1]  # nothing yet: still an axis from 0
    assert y_ticks(y_top(22), 12) == [0, 5, 10, 15, 20]
    assert y_ticks(y_top(8), 12) == [0, 2, 4, 6, 8]
    assert y_ticks(y_top(18_666), 30) == [0, 5_000, 10_000, 15_000, 20_000]
    assert y_ticks(y_top(4), 12) == [0, 2, 4]  # at most one tick per two rows: 0..5 would be 6 in 10 rows
    assert y_ticks(y_top(22), 27) == [0, 5, 10, 15, 20]
    assert x_ticks(3, 60) == [1, 2, 3]
    many = x_ticks(100, 60)
    assert many[0] == 1 and many[-1] == 100 and len(many) <= 60 // 7


@pytest.mark.parametrize("size", SIZES)
def test_trends_snapshot(snap_compare, history, size):
    """80x24: hosts; 120x40: services (m), 20 -> 22 a small step on an axis from 0."""

    async def run_before(pilot: Pilot) -> None:
        pilot.app.animation_level = "none"
        await trends(pilot, 6)
        if size == (120, 40):
            await pilot.press("m")
            await showing(pilot, "range 20–22")
        await showing(pilot, "6 scans · 2026-11-28")
        await settle(pilot)

    assert snap_compare(app(), terminal_size=size, run_before=run_before)


# -- progress -----------------------------------------------------------------------------------


class GrowingStep:
    """Stands in for the subdomains step: its total grows as it finds zones."""

    name = "subdomains"
    inputs = ("roots",)
    outputs = ("addresses",)
    saves = ("host",)
    growing = True
    seen: list[ModuleProgress] = []

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    async def run(self) -> None:
        tick = self.ctx.ticker(self.name)
        for done, total in ((0, 9_666), (5_000, 9_666), (9_000, 17_666), (17_000, 18_666), (18_666, 18_666)):
            tick(done, total)
            tick(done, total - 1)  # a late report with a smaller total (a zone's count taken back)
            self.seen.append(ModuleProgress.from_dict(self.ctx.progress.to_dict()["modules"][self.name]))


def test_a_growing_total_is_a_lower_bound_in_a_real_run(monkeypatch):
    """A real thread-backend run (the pipeline's lifecycle, reports serialised as
    the Celery backend stores them) of a step whose total grows."""
    from assetmon_tui.pipeline import run as pipeline
    from assetmon_tui.pipeline.steps import STEPS

    monkeypatch.setitem(STEPS, "subdomains", GrowingStep)
    monkeypatch.setattr(pipeline, "REPORT_EVERY", 0.0)
    project = project_with_targets("acme")
    scan = repo.create_scan(project.id, ["subdomains"], {})
    reports: list[Progress] = []
    GrowingStep.seen = []
    pipeline.run_scan(scan.id, lambda p: reports.append(Progress.from_dict(p.to_dict())), "thread")
    running = [p.modules["subdomains"] for p in reports if p.modules["subdomains"].status == "running"]
    assert running and all(not m.total_final for m in running)  # a lower bound while it runs
    assert [m.total for m in GrowingStep.seen] == [9_666, 9_666, 17_666, 18_666, 18_666]  # never shrinks
    assert GrowingStep.seen[2].count_text() == "9,000 of ≥17,666"
    last = reports[-1].modules["subdomains"]
    assert last.status == "done" and last.total_final and last.count_text() == "18,666/18,666"


def test_known_totals_are_reported_before_the_first_result():
    from assetmon_tui.pipeline.run import Run
    from assetmon_tui.pipeline.steps.dns import dns_options, resolve_names

    project = project_with_targets("acme")
    scan = repo.create_scan(project.id, ["dns"], {})
    assert leases.claim(scan.id, "thread", "test:1", 60, 3)
    ctx = Run(scan.id, lambda progress: None, get_settings(), "thread", "test:1").ctx
    calls: list[tuple[int, int]] = []

    class Stop(Exception):
        pass

    def progress(done: int, total: int) -> None:
        calls.append((done, total))
        raise Stop  # the first report is all this test needs: no lookup is sent

    import asyncio

    with pytest.raises(Stop):
        asyncio.run(resolve_names(ctx, ["a.acme.test", "b.acme.test"], dns_options(ctx), progress))
    assert calls == [(0, 2)]


def test_old_and_newer_progress_payloads_still_read():
    dns = {"status": "running", "done": 1, "total": 4}  # before total_final
    old = {"scan_id": 3, "state": "running", "updated_at": 5.0, "modules": {"dns": dns}}
    progress = Progress.from_dict(old)
    assert progress.modules["dns"].total_final and progress.modules["dns"].count_text() == "1/4"
    js_module = {"status": "running", "done": 2, "total": 5, "total_final": False, "x": 1}  # x: a later key
    newer = {**old, "eta": 12, "modules": {"js": js_module}}
    js = Progress.from_dict(newer).modules["js"]
    assert js.count_text() == "2 of ≥5" and not js.determinate
    assert Progress.from_dict(Progress.from_dict(newer).to_dict()) == Progress.from_dict(newer)


def bars(panel: Any) -> dict[str, tuple[float | None, str]]:
    """Each module's bar as drawn: (its completed share, None for a pulse) and its count text."""
    group = panel.content
    table = group.renderables[1]
    names, drawn, counts = (list(column.cells) for column in table.columns)
    return {
        str(name): (None if bar.total is None else bar.completed / bar.total, str(count))
        for name, bar, count in zip(names, drawn, counts, strict=True)
    }


async def test_the_panel_never_moves_backwards(monkeypatch):
    """Progress fed to the dashboard's live panel (serialised and read back on each
    poll, as from Redis): a growing total pulses with "n of ≥N"; a known one
    fills and never goes back, even from an old payload whose total grew."""
    from assetmon_tui.dispatch import Dispatcher
    from assetmon_tui.ui.panels import ScanPanel

    project = project_with_targets("acme")
    fake_scan(project.id, World())
    scan = repo.create_scan(project.id, ["subdomains", "dns"], {})
    assert leases.claim(scan.id, "thread", "test:1", 60, 3)
    row = repo.get_scan(scan.id)
    progress = Progress(scan.id, state="running", started_at=time.time())
    monkeypatch.setattr(Dispatcher, "reap", lambda self: [])
    monkeypatch.setattr(Dispatcher, "active", lambda self: [(row, Progress.from_dict(progress.to_dict()))])

    steps: list[dict[str, ModuleProgress]] = [
        {"subdomains": ModuleProgress("running", 100, 9_666, False), "dns": ModuleProgress()},
        {"subdomains": ModuleProgress("running", 9_000, 17_666, False), "dns": ModuleProgress()},
        {"subdomains": ModuleProgress("running", 9_100, 18_666, False), "dns": ModuleProgress()},
        {"subdomains": ModuleProgress("done", 18_666, 18_666), "dns": ModuleProgress("running", 0, 10)},
        {"subdomains": ModuleProgress("done", 18_666, 18_666), "dns": ModuleProgress("running", 6, 10)},
        # an older worker (no total_final: read as final) whose total grew: the bar stays where it was
        {"subdomains": ModuleProgress("done", 18_666, 18_666), "dns": ModuleProgress("running", 7, 20)},
        {"subdomains": ModuleProgress("done", 18_666, 18_666), "dns": ModuleProgress("running", 16, 20)},
    ]
    expected = [
        {"subdomains": (None, "100 of ≥9,666")},
        {"subdomains": (None, "9,000 of ≥17,666")},
        {"subdomains": (None, "9,100 of ≥18,666")},
        {"subdomains": (1.0, "18,666/18,666"), "dns": (0.0, "0/10")},
        {"dns": (0.6, "6/10")},
        {"dns": (0.6, "7/20")},  # not 0.35: never backwards
        {"dns": (0.8, "16/20")},
    ]
    async with app().run_test(size=(80, 24)) as pilot:
        await dashboard(pilot, 2)
        shares: dict[str, list[float]] = {}
        for modules, wanted in zip(steps, expected, strict=True):
            progress.modules = modules
            progress.updated_at = time.time()
            await until(
                pilot,
                lambda w=wanted: (
                    bool(pilot.app.query(ScanPanel))
                    and all(bars(pilot.app.query_one(ScanPanel)).get(k) == v for k, v in w.items())
                    and all(count in screen_text(pilot) for _, count in w.values())  # drawn, not only built
                ),
                f"the panel to draw {wanted}",
            )
            text = screen_text(pilot)
            for name, (share, count) in bars(pilot.app.query_one(ScanPanel)).items():
                assert count in text, text
                if share is not None:
                    shares.setdefault(name, []).append(share)
        assert all(values == sorted(values) for values in shares.values()), shares


# -- readable counts ----------------------------------------------------------------------------


def test_counts_fit_their_column():
    from assetmon_tui.ui.panels import Counts, found_text

    counts = Counts({"hosts": 264, "services": 20, "endpoints": 292, "findings": 0})
    assert str(counts) == "264 hosts · 20 services · 292 endpoints"
    assert counts.fitting(60).plain == "264 hosts · 20 services · 292 endpoints"
    assert counts.fitting(30).plain == "264 hosts · 20 svc · 292 urls"
    assert counts.fitting(22).plain == "264 hosts · 20 svc …"  # whole counts, and a sign of more
    assert counts.fitting(6).plain == "264 h…"
    one = Counts({"hosts": 1, "services": 1, "endpoints": 1, "findings": 1})
    assert str(one) == "1 host · 1 service · 1 endpoint · 1 finding"

    class Row:  # a running scan's row: the counters its run reported
        summary = '{"hosts": 7, "services": 3, "elapsed": 12.5}'

    assert str(found_text(Row(), None)) == "7 hosts · 3 services"
    assert sorted([one, counts]) == [one, counts]  # sortable, by hosts first


async def test_found_column_reads_in_words():
    project = project_with_targets("acme")
    first = fake_scan(project.id, World())
    compute_events(first)
    async with app().run_test(size=(120, 40)) as pilot:
        await dashboard(pilot, 1)
        table: Any = pilot.app.query_one("#scans")
        found = next(i for i, c in enumerate(table.ordered_columns) if str(c.label) == "found")
        cell = table.get_cell_at((0, found))
        assert str(cell) == "3 hosts · 4 services · 2 endpoints · 1 finding"
        width = table.ordered_columns[found].width
        text = await showing(pilot, cell.fitting(width).plain)
        assert "3h " not in text and "4s " not in text


# -- secrets ------------------------------------------------------------------------------------


async def test_no_secret_in_clear_unless_revealed(secrets):
    values = (AWS, GITHUB, STRIPE)
    async with app().run_test(size=(120, 40)) as pilot:
        a: Any = pilot.app
        await dashboard(pilot, 1)
        await pilot.press("f")
        await until(pilot, lambda: a.screen.query_one("#findings").row_count == 3, "the findings")
        screen: Any = a.screen
        # the highlighted finding (the worst: github) and its context: the other secrets masked too
        text = await showing(pilot, "github_pat", GITHUB_MASK, AWS_MASK)
        assert not any(v in text for v in values)
        for row, fingerprint in enumerate(("fp-gh", "fp-aws", "fp-stripe")):  # every finding's detail, worst first
            screen.query_one("#findings").move_cursor(row=row)
            text = await showing(pilot, f"fp {fingerprint}", "v reveals")
            assert not any(v in text for v in values), text

        async def js_view() -> str:
            await pilot.press("b")
            await until(pilot, lambda: type(a.screen).__name__ == "JsViewScreen", "the JS view")
            area = a.screen.query_one("#js-text")
            await until(pilot, lambda: "function init()" in area.text, "the beautified file", timeout=30)
            await showing(pilot, "beautified")
            return str(area.text)

        # the file: every secret of it redacted
        screen.query_one("#findings").move_cursor(row=0)
        await showing(pilot, "github_pat")
        body = await js_view()
        assert not any(v in body for v in values)
        assert all(m in body for m in (AWS_MASK, GITHUB_MASK, STRIPE_MASK))
        assert not any(v in screen_text(pilot) for v in values)
        await showing(pilot, "3 secrets redacted")
        await pilot.press("escape")
        await until(pilot, lambda: type(a.screen).__name__ == "FindingsScreen", "back to the findings")

        # revealed: that one shows, in the detail and in the file; the others stay masked
        await pilot.press("v")
        text = await showing(pilot, GITHUB, "REVEALED")
        assert AWS not in text and STRIPE not in text
        body = await js_view()
        assert GITHUB in body and AWS not in body and STRIPE not in body
        assert AWS_MASK in body and STRIPE_MASK in body
        await showing(pilot, "2 secrets redacted", "this finding's secret shown")
        await pilot.press("escape")
        await until(pilot, lambda: type(a.screen).__name__ == "FindingsScreen", "back to the findings")


def test_mask_secrets_keeps_only_the_revealed_one():
    from types import SimpleNamespace

    from assetmon_tui.secrets.redact import mask_secrets

    def finding(value: str, redacted: str, kind: str = "secret") -> Any:
        return SimpleNamespace(value=value, redacted=redacted, kind=kind)

    found = [finding("abcd1234", "ab…34"), finding("abcd1234XYZ9", "ab…Z9"), finding("/api/v1", "", "endpoint")]
    text = "x=abcd1234XYZ9; y=abcd1234; z='/api/v1'"
    assert mask_secrets(text, found) == "x=ab…Z9; y=ab…34; z='/api/v1'"  # the longest value first
    assert mask_secrets(text, found, keep="abcd1234") == "x=ab…Z9; y=abcd1234; z='/api/v1'"
    pem = finding("-----BEGIN KEY-----\nMIIEabcdef\n-----END KEY-----", "-----BEGIN…")
    assert "MIIEabcdef" not in mask_secrets("'-----BEGIN KEY-----'\n'MIIEabcdef'", [pem])


async def test_a_token_in_a_files_url_is_masked_in_the_table_and_the_detail():
    """A key in a script's query string (main.js?key=AKIA…) is a finding of that file: its URL shows it masked."""
    project = project_with_targets("acme")
    world = World()
    url = f"https://www.acme.test/main.js?key={AWS}"
    world.findings["fp-aws"].update(location=url, value=AWS, redacted=AWS_MASK, context=f"src='{url}'")
    scan = fake_scan(project.id, world)
    compute_events(scan)
    async with app().run_test(size=(120, 40)) as pilot:
        a: Any = pilot.app
        await dashboard(pilot, 1)
        await pilot.press("f")
        await until(pilot, lambda: a.screen.query_one("#findings").row_count == 1, "the findings")
        text = await showing(pilot, f"main.js?key={AWS_MASK}", "v reveals")
        assert AWS not in text
        assert AWS not in str(a.screen.query_one("#findings").get_row_at(0))
