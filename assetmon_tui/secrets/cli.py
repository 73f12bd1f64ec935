"""`assetmon secrets [--json] [--reveal] [--fail-on-findings] PATH_OR_URL...`

Exit status: 0 when every input was scanned (findings or not); 1 with
--fail-on-findings when anything was found; 2 when an input could not be
read (the other inputs are still scanned and printed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from assetmon_tui.core.sanitize import clean_text

from .engine import SecretFinding, scan_bytes

MAX_BYTES = 10_000_000
FETCH_TIMEOUT = 20.0
SCAN_SUFFIXES = frozenset(
    [
        ".js",
        ".mjs",
        ".cjs",
        ".jsx",
        ".ts",
        ".tsx",
        ".map",
        ".html",
        ".htm",
        ".json",
        ".env",
        ".txt",
        ".yml",
        ".yaml",
        ".xml",
        ".conf",
        ".cfg",
        ".ini",
        ".properties",
        ".toml",
        ".config",
        ".vue",
        ".svelte",
        ".php",
        ".py",
        ".rb",
        ".go",
        ".java",
        ".sh",
    ]
)
SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__"})


class InputError(Exception):
    """An input that could not be read; the message names it."""


def _wanted(path: Path) -> bool:
    name = path.name.lower()
    return path.suffix.lower() in SCAN_SUFFIXES or name.startswith(".env")


def _files(root: Path) -> Iterator[Path]:
    """Files under a directory that are worth scanning, in a stable order."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if _wanted(path) and path.is_file():
                yield path


def _read_file(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise InputError(f"{path}: {size} bytes is over the {MAX_BYTES}-byte limit")
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from exc


def _fetch(url: str) -> bytes:
    import httpx  # only URL inputs need it

    try:
        with httpx.stream("GET", url, timeout=FETCH_TIMEOUT, follow_redirects=True) as resp:
            if resp.status_code >= 400:
                raise InputError(f"{url}: HTTP {resp.status_code}")
            chunks, total = [], 0
            for chunk in resp.iter_bytes():
                total += len(chunk)
                if total > MAX_BYTES:
                    raise InputError(f"{url}: response is over the {MAX_BYTES}-byte limit")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise InputError(f"{url}: {type(exc).__name__}: {exc}") from exc


def _inputs(target: str) -> Iterator[tuple[str, bytes | InputError]]:
    """(source, content or the error reading it) for each file behind target."""
    if target.startswith(("http://", "https://")):
        try:
            yield target, _fetch(target)
        except InputError as exc:
            yield target, exc
        return
    path = Path(target)
    if path.is_dir():
        for file in _files(path):
            try:
                data = _read_file(file)
            except InputError as exc:
                yield str(file), exc
                continue
            if b"\x00" not in data[:8192]:  # binaries are skipped when walking folders
                yield str(file), data
        return
    try:
        yield target, _read_file(path)
    except InputError as exc:
        yield target, exc


def _text_line(f: SecretFinding, reveal: bool) -> str:
    secret = clean_text(f.secret if reveal else f.redacted, 200)
    where = clean_text(f"{f.source}:{f.line}:{f.column}", 300)
    return f"{f.severity.upper():8} {f.confidence:6} {clean_text(f.rule_id, 60):32} {where}  {secret}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="assetmon secrets", description="Find secrets in files, folders and URLs.")
    parser.add_argument("targets", nargs="+", metavar="PATH_OR_URL")
    parser.add_argument("--json", action="store_true", help="one JSON object per finding")
    parser.add_argument("--reveal", action="store_true", help="print secrets in full")
    parser.add_argument("--fail-on-findings", action="store_true", help="exit 1 on findings")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except BrokenPipeError:  # output piped into `head` and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _run(args: argparse.Namespace) -> int:
    errors = findings = 0
    for target in args.targets:
        for source, content in _inputs(target):
            if isinstance(content, InputError):
                errors += 1
                print(f"assetmon secrets: cannot read {clean_text(str(content), 500)}", file=sys.stderr)
                continue
            for f in scan_bytes(content, source, max_size=MAX_BYTES):
                findings += 1
                if args.json:
                    d = f.to_dict(reveal=args.reveal)
                    record = {
                        "source": d["source"],
                        "line": f.line,
                        "column": f.column,
                        "rule": f.rule_id,
                        "title": f.title,
                        "severity": f.severity,
                        "confidence": f.confidence,
                        "secret": d["secret"],
                        "fingerprint": f.fingerprint,
                        "context": list(f.context),
                    }
                    print(json.dumps(record, ensure_ascii=True))
                else:
                    print(_text_line(f, args.reveal))
            sys.stdout.flush()
    if errors:
        return 2
    return 1 if args.fail_on_findings and findings else 0
