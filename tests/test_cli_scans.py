"""Headless control of scans: `assetmon scans`, `cancel` and `resume`, run as
the real command in a subprocess against this test's store."""

from __future__ import annotations

import json
import os
import subprocess

from support.scenario import estate, make_project

from assetmon_tui.store import leases, repo
from assetmon_tui.testing import ROOT, VENV_BIN


def assetmon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "assetmon"), *args], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=120
    )


def test_scans_lists_status_runner_and_attempts_and_cancel_stops_a_queued_scan(no_redis):
    project_id = make_project()
    queued = repo.create_scan(project_id, ["dns"], {})
    out = assetmon("scans", "--json")
    assert out.returncode == 0, out.stderr
    (row,) = [json.loads(line) for line in out.stdout.splitlines()]
    assert (row["id"], row["project"], row["status"], row["attempts"]) == (queued.id, "acme", "queued", 0)
    assert "waiting for a worker" in row["message"]
    cancelled = assetmon("cancel", str(queued.id))
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stderr
    assert repo.get_scan(queued.id).status == "cancelled"
    assert assetmon("scans", "--active").stdout == ""
    assert assetmon("cancel", "999").returncode == 2  # no such scan: one line, exit 2


def test_resume_runs_a_failed_scan_again_from_its_checkpoint(no_redis):
    with estate() as e:
        project_id = make_project(targets=e.targets)
        scan = repo.create_scan(project_id, ["dns", "http"], e.options())
        assert leases.claim(scan.id, "thread", "gone:1", lease=60, max_attempts=3)
        repo.finish_scan(scan.id, "failed", "runner lost: its runner gone:1 exited; gave up")
        refused = assetmon("resume", str(scan.id + 1))
        assert refused.returncode == 2 and "no scan" in refused.stderr
        out = assetmon("resume", str(scan.id))
        assert out.returncode == 0, out.stderr
    row = repo.get_scan(scan.id)
    assert row.status == "done" and row.backend == "thread"
    assert [a.outcome for a in leases.attempts(scan.id)] == ["failed", "done"]
    assert {h.name for h in repo.hosts(project_id)} >= {"www.scan.test", "api.scan.test"}
    again = assetmon("resume", str(scan.id))
    assert again.returncode == 2 and "only failed or cancelled" in again.stderr


def test_a_failed_source_is_a_warning_on_stderr_and_in_the_json(no_redis, tmp_path):
    from assetmon_tui.testing import free_port

    (tmp_path / "words.txt").write_text("www\napi\n")
    env = {"ASSETMON_CT_URL": f"http://127.0.0.1:{free_port()}/", "ASSETMON_WORDLIST": str(tmp_path / "words.txt")}
    with estate() as e:
        out = subprocess.run(
            [str(VENV_BIN / "assetmon"), "scan", "scan.test", "--modules", "subdomains,dns", "--json"]
            + ["--nameserver", e.dns.address],
            cwd=ROOT,
            env={**os.environ, **env, "ASSETMON_BACKEND": "thread"},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.returncode == 0, out.stderr  # done, with a warning
    assert "warning: ct scan.test: failed" in out.stderr
    assert "warning(s)" in out.stderr.splitlines()[-1]
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert {r["name"] for r in rows if r["type"] == "dns"} >= {"www.scan.test"}
    final = rows[-1]
    assert final["type"] == "scan" and final["status"] == "done"
    (ct,) = [s for s in final["sources"] if s["source"] == "ct scan.test"]
    assert ct["status"] == "failed" and ct["reason"]
    assert final["inventory"]["names"] >= 1


def test_exclusions_on_the_command_line(no_redis):
    with estate() as e:
        common = ["--modules", "dns", "--nameserver", e.dns.address, "--json"]
        for project, args in (
            ("flag", ["www.scan.test", *common, "--exclude", "api.scan.test"]),
            ("dash", [*common, "--", "www.scan.test", "-api.scan.test"]),
        ):
            out = subprocess.run(
                [str(VENV_BIN / "assetmon"), "scan", "--project", project, *args],
                cwd=ROOT,
                env={**os.environ, "ASSETMON_BACKEND": "thread"},
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert out.returncode == 0, out.stderr
            stored = repo.list_targets(repo.get_project(project).id)
            assert {(t.value, t.exclude) for t in stored} == {("www.scan.test", False), ("api.scan.test", True)}


def test_a_reader_that_stops_early_is_no_error(no_redis):
    """`assetmon scans | head -2`: the pipe closes while scans are written."""
    project_id = make_project("piped")
    for _ in range(400):  # more than a pipe holds (one project: each ends before the next)
        scan = repo.create_scan(project_id, ["dns"], {})
        repo.finish_scan(scan.id, "done")
    env = {**os.environ}
    proc = subprocess.Popen(
        [str(VENV_BIN / "assetmon"), "scans", "--limit", "400"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()  # as head does after its lines
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and b"Traceback" not in err and b"BrokenPipe" not in err, err[-500:]


def test_the_share_done_never_goes_down_while_a_step_finds_more_work():
    """`assetmon scans`' progress: a discovery step's done/total is a lower
    bound (its total grows), so it counts only once it ends."""
    from assetmon_tui.cli import _scan_row
    from assetmon_tui.core.progress import ModuleProgress, Progress

    scan = repo.create_scan(make_project(), ["subdomains", "dns"], {})
    shares = []
    for done, total in ((50, 60), (55, 600), (600, 600)):
        finding = ModuleProgress("running", done, total, total_final=False)
        modules = {"subdomains": finding, "dns": ModuleProgress()}
        shares.append(_scan_row(scan, Progress(scan.id, "running", modules), "acme")["progress"])
    finished = {"subdomains": ModuleProgress("done", 600, 600), "dns": ModuleProgress("running", 30, 120)}
    shares.append(_scan_row(scan, Progress(scan.id, "running", finished), "acme")["progress"])
    assert shares == ["0%", "0%", "0%", "62%"]  # before: 42%, 5%, 50%, 62%
