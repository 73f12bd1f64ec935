"""nuclei (projectdiscovery) as an optional scanner: run with a template set
against URLs, its JSONL read into findings. Called with an argument list,
never through a shell; bounded in time and output; what it reports quotes
the scanned hosts, so every field is cleaned by the caller's persist step."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

OUTPUT_LIMIT = 50_000_000  # bytes of JSONL read at most
LINE_LIMIT = 1_000_000
_VERSION = re.compile(r"v?(\d+\.\d+\.\d+)")


@dataclass
class NucleiFinding:
    template: str  # template-id
    name: str
    severity: str  # info | low | medium | high | critical | unknown
    matched: str  # matched-at (a URL, or host:port)
    host: str
    kind: str = ""  # http | dns | ssl | network ...
    extracted: list[str] = field(default_factory=list)


@dataclass
class NucleiOptions:
    binary: str
    templates: list[str] = field(default_factory=list)  # -t each ([] : nuclei's default set)
    severity: str = ""
    rate: int = 50
    timeout: float = 900.0


def binary(path: str) -> str | None:
    """The nuclei binary to run, or None when it is not there."""
    return shutil.which(path) if path else None


async def _output(cmd: list[str], timeout: float) -> str:
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        return ""
    return out[:20_000].decode("utf-8", "replace")


async def versions(path: str) -> tuple[str, str]:
    """(engine, templates) versions, "" where nuclei does not tell."""
    engine = _VERSION.findall(await _output([path, "-version", "-duc"], 20))
    templates = _VERSION.findall(await _output([path, "-templates-version", "-duc"], 20))
    return (engine[-1] if engine else ""), (templates[-1] if templates else "")


def parse(line: bytes) -> NucleiFinding | None:
    """One JSONL result; None for anything else (a progress line, garbage)."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("template-id"), str):
        return None
    raw_info = data.get("info")
    info: dict[str, object] = raw_info if isinstance(raw_info, dict) else {}
    extracted = data.get("extracted-results")
    return NucleiFinding(
        template=data["template-id"],
        name=str(info.get("name") or data["template-id"]),
        severity=str(info.get("severity") or "unknown").lower(),
        matched=str(data.get("matched-at") or data.get("host") or ""),
        host=str(data.get("host") or ""),
        kind=str(data.get("type") or ""),
        extracted=[str(x) for x in extracted[:20]] if isinstance(extracted, list) else [],
    )


async def run(urls: list[str], options: NucleiOptions) -> AsyncIterator[NucleiFinding]:
    """nuclei over `urls`; its findings as they come. Raises RuntimeError
    with one line when nuclei fails or runs out of time."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.write("\n".join(urls) + "\n")
        listing = fh.name
    cmd = [options.binary, "-l", listing, "-jsonl", "-silent", "-nc", "-duc", "-rl", str(options.rate)]
    for template in options.templates:
        cmd += ["-t", template]
    if options.severity:
        cmd += ["-severity", options.severity]
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True, limit=LINE_LIMIT
    )
    assert proc.stdout is not None and proc.stderr is not None
    read = 0
    try:
        async with asyncio.timeout(options.timeout):
            while read < OUTPUT_LIMIT:
                try:
                    line = await proc.stdout.readline()
                except ValueError:  # a line over LINE_LIMIT: skip what is left of it
                    continue
                if not line:
                    break
                read += len(line)
                finding = parse(line)
                if finding is not None:
                    yield finding
            code = await proc.wait()
    except TimeoutError:
        raise RuntimeError(f"nuclei ran out of time ({options.timeout:.0f} s)") from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        os.unlink(listing)
    if code != 0:
        err = (await proc.stderr.read(2000)).decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(f"nuclei exited with {code}: {err[-1][:200] if err else 'no message'}")
