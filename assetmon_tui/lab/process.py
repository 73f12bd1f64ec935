"""`LabProcess`: the lab served by `assetmon lab --json` in a process of its
own, with the face of `Lab` that scans need (info, estate, set_mutation,
diff). A scan run in the caller's process (the thread backend) then has a
core and a GIL to itself instead of sharing them with the lab's servers:
lab scans in tests take ~20 % less, a cold first scan ~40 % less.

What only the in-process `Lab` has (its DNS query log, its event loop) is not
here: a test that reads them uses `Lab`.
"""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any

from .estate import Estate

START_TIMEOUT = 30.0  # seconds for the lab to bind and print its info (certificates are made at start)
ANSWER_TIMEOUT = 10.0  # seconds for a mutation to be in place


class LabProcess:
    def __init__(self, domain: str = "acme.test", hosts: int | None = None, seed: int = 1, standard_ports: bool = True):
        self.estate = Estate(domain, seed, hosts, 0)
        self.info: dict[str, Any] = {}
        self._args = ["--domain", domain, "--seed", str(seed)] + (["--hosts", str(hosts)] if hosts else [])
        self._args += [] if standard_ports else ["--free-ports"]
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> dict[str, Any]:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "assetmon_tui.lab", "--json", *self._args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,  # (in the caller's process group: a Ctrl+C or a hang-up there stops it too)
        )
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._lines: dict[str, queue.Queue[str]] = {"out": queue.Queue(), "err": queue.Queue()}
        for name, stream in (("out", self._proc.stdout), ("err", self._proc.stderr)):
            threading.Thread(target=_pump, args=(stream, self._lines[name]), daemon=True).start()
        try:
            self.info = json.loads(self._line("out", START_TIMEOUT, "info"))
        except BaseException:
            self.stop()
            raise
        return self.info

    def set_mutation(self, level: int) -> dict[str, Any]:
        """Advance the running lab to `level` (one SIGUSR1 a level: it only goes up)."""
        if level < self.estate.mutate:
            raise ValueError(f"the lab process is at mutation {self.estate.mutate}: it cannot go back to {level}")
        assert self._proc is not None, "the lab process is not running"
        while self.estate.mutate < level:
            self._proc.send_signal(signal.SIGUSR1)
            self.info = json.loads(self._line("err", ANSWER_TIMEOUT, "info after the mutation"))
            self.estate = self.estate.at(self.info["mutate"])
        return self.info

    @property
    def ports(self) -> dict[str, int]:
        """As `Lab.ports`: "dns", "ct", "http", "https"."""
        return {
            "dns": int(self.info["nameserver"].rsplit(":", 1)[1]),
            "ct": int(self.info["ct_url"].rstrip("/").rsplit(":", 1)[1]),
            "http": self.info["http_port"],
            "https": self.info["https_port"],
        }

    def diff(self, a: int, b: int) -> dict[str, list[Any]]:
        """As `Lab.diff`: `estate.diff(a, b)`, with `bound_port` where the service is bound now."""
        out = self.estate.diff(a, b)
        bound = {(s["address"], s["nominal_port"]): s["port"] for s in self.info.get("services", [])}
        for item in out["ports_opened"] + out["ports_closed"]:
            item["bound_port"] = bound.get((item["address"], item["port"]))
        return out

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> LabProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _line(self, stream: str, timeout: float, what: str) -> str:
        """The lab's next JSON line on `stream` within `timeout` (its log lines
        pass by); its exit or silence is an error naming why."""
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines[stream].get(timeout=left)
            except queue.Empty:
                break
            if line == "":  # end of file: it exited
                break
            if line.lstrip().startswith("{"):
                return line
        with contextlib.suppress(subprocess.TimeoutExpired):  # an exit's status comes a moment after its end of file
            self._proc.wait(0.5)
        said = [line.strip() for line in list(self._lines["err"].queue) if line.strip()]
        last = f": {said[-1][:300]}" if said else ""
        raise RuntimeError(
            f"the lab process printed no {what} within {timeout:.0f} s (exit status {self._proc.poll()}){last}"
        )


def _pump(stream: IO[str], lines: queue.Queue[str]) -> None:
    """Every line of `stream` into `lines`, then "" at its end."""
    for line in stream:
        lines.put(line)
    lines.put("")
