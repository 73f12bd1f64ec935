"""Content-addressed files (JavaScript bodies) in the data dir, so a file seen
on many hosts or scans is stored and analysed once, and the TUI can show it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..core.config import get_settings


def _path(sha256: str) -> Path:
    if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a sha256: {sha256!r}")
    return get_settings().data_dir / "blobs" / sha256[:2] / sha256


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def has_blob(sha256: str) -> bool:
    return _path(sha256).is_file()


def save_blob(data: bytes) -> str:
    sha = digest(data)
    path = _path(sha)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # atomic: readers never see half a file
    return sha


def load_blob(sha256: str) -> bytes | None:
    try:
        return _path(sha256).read_bytes()
    except FileNotFoundError:
        return None
