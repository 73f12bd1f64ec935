"""Helpers shared by the benches: an isolated AssetMon home, the lab with web ports the scanners
recognise, and small statistics/table printing (Redis and the Celery worker
come from assetmon_tui.testing, as in the tests). Loopback only."""

from __future__ import annotations

import compileall
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from assetmon_tui.testing import ROOT, wait_for

PY = sys.executable

# The commands we time start as on a user's machine, where Python has cached our
# modules' bytecode: pip compiled the libraries' and the peers' modules, but ours
# are an editable install, and this environment may forbid writing the cache
# (PYTHONDONTWRITEBYTECODE), which would charge every run its compiling (35 ms for
# the TUI's first frame, 0.1-0.3 s for a scan command).
compileall.compile_dir(ROOT / "assetmon_tui", quiet=1)
compileall.compile_dir(ROOT / "worker", quiet=1)


# -- small things ---------------------------------------------------------------------


def pct(values: list[float], p: float) -> float:
    """Percentile by the nearest-rank method (p in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * p // 100))  # ceil
    return ordered[int(rank) - 1]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": statistics.median(values) if values else float("nan"),
        "p95": pct(values, 95),
        "max": max(values) if values else float("nan"),
    }


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=False)))
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


# -- isolated home --------------------------------------------------------------------


@contextlib.contextmanager
def isolated_home(**env: str):
    """A temporary ASSETMON_HOME (fresh SQLite DB) plus extra ASSETMON_* variables,
    for this process and the subprocesses it starts; restored afterwards."""
    from assetmon_tui.core.config import get_settings

    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="assetmon-bench-") as tmp:
        os.environ["ASSETMON_HOME"] = str(Path(tmp) / "home")
        os.environ.pop("DATABASE_URL", None)
        os.environ.update(env)
        get_settings.cache_clear()
        try:
            yield Path(tmp)
        finally:
            os.environ.clear()
            os.environ.update(saved)
            get_settings.cache_clear()


def setenv(**env: str) -> None:
    """Set ASSETMON_* variables inside isolated_home() and reload the settings."""
    from assetmon_tui.core.config import get_settings

    os.environ.update(env)
    get_settings.cache_clear()


def proc_status_kb(pid: int, field: str) -> int:
    """VmHWM (peak RSS) or VmRSS of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux: echo 5 > /proc/PID/clear_refs)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# -- the lab -----------------------------------------------------------------------------

# (http, https) pairs both recognised by the scanners as web ports, so the
# pipeline probes the lab's vhosts over HTTP and HTTPS; tried in order (other
# sessions may hold some).
WEB_PORT_PAIRS = [(80, 443), (8080, 8443), (8000, 4443), (8880, 9443), (8888, 10443), (8008, 5443), (8081, 7443)]


class LabProcess:
    """`python -m assetmon_tui.lab` in a subprocess: the lab's servers must not
    compete for this process's GIL (real targets are elsewhere). `info` is the
    lab's JSON info line."""

    def __init__(self, hosts: int | None, http: int, https: int, extra: tuple[str, ...] = ()):
        cmd = [PY, "-m", "assetmon_tui.lab", "--json", "--port-http", str(http), "--port-https", str(https)]
        cmd += ["--hosts", str(hosts)] if hosts else []
        cmd += list(extra)  # e.g. --free-ports, --latency MS
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read()
            self.proc.wait()
            raise OSError(err.strip().splitlines()[-1] if err.strip() else "lab exited")
        self.info = json.loads(line)
        self.pid = self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_lab(
    hosts: int | None = None, extra: tuple[str, ...] = (), pairs: list[tuple[int, int]] = WEB_PORT_PAIRS
) -> LabProcess:
    """The lab in a subprocess, on the first free web port pair of `pairs`
    (stop it with lab.stop()); `extra`: more `assetmon lab` arguments."""
    errors = []
    for http, https in pairs:
        try:
            return LabProcess(hosts, http, https, extra)
        except OSError as exc:
            errors.append(f"{http}/{https}: {exc}")
    sys.exit("no free web port pair for the lab:\n" + "\n".join(errors))


def lab_env(lab) -> dict[str, str]:
    """Settings that keep every scan on the lab (CT, resolvers): no traffic off loopback."""
    return {"ASSETMON_NAMESERVERS": lab.info["nameserver"], "ASSETMON_CT_URL": lab.info["ct_url"]}


def lab_ports(lab, base: str = "top100") -> str:
    """The port list for a lab scan: `base` (e.g. top100, or "") plus the ports the lab really bound."""
    extra = [lab.info["http_port"], lab.info["https_port"]] + [s["port"] for s in lab.info["services"]]
    return ",".join([base] * bool(base) + [str(p) for p in sorted(set(extra))])


def lab_targets(lab, modules: list[str]) -> list[str]:
    """What a user would enter: the apex domain when the subdomains module will
    find the names (each domain target is brute-forced), else every lab name."""
    return [lab.info["domain"]] if "subdomains" in modules else sorted(lab.info["addresses"])


def lab_project(lab, modules: list[str], name: str = "lab", ports: str = "top100") -> tuple[int, dict]:
    """A project with the lab's targets (see lab_targets); (project id, scan options)."""
    from assetmon_tui.store import repo

    project = repo.create_project(name)
    repo.add_targets(project.id, lab_targets(lab, modules))
    return project.id, {"nameservers": [lab.info["nameserver"]], "ports": lab_ports(lab, ports)}


def wait_scan(scan_id: int, timeout: float = 900.0):
    """Block until the scan row is final; returns it."""
    from assetmon_tui.core.progress import FINAL_STATES
    from assetmon_tui.store import repo

    return wait_for(
        lambda: (s := repo.get_scan(scan_id)).status in FINAL_STATES and s,
        timeout,
        interval=0.05,
        what=f"scan {scan_id}",
    )
