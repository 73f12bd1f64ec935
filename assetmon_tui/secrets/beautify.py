"""Readable JavaScript around findings, and whole-file beautification.

jsbeautifier manages roughly 0.3 MB/s, so the scan path only ever beautifies
a small window around a match; whole files go through `beautify_file`, which
runs in a worker process under a deadline and caches by content hash.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import threading
from collections import OrderedDict
from pathlib import Path

import jsbeautifier

WINDOW = 300  # characters of code each side of a match that get beautified
_LONG_LINE = 400  # longer lines are treated as minified
_LINE_CAP = 240
_SPAN = 8 * WINDOW  # furthest we look for line breaks around a match


def _beautify(code: str) -> str:
    opts = jsbeautifier.default_options()
    opts.indent_size = 2
    beautified: str = jsbeautifier.beautify(code, opts)  # jsbeautifier has no type information
    return beautified


def _clip(line: str, value: str) -> str:
    if len(line) <= _LINE_CAP:
        return line
    at = max(0, line.find(value))
    start = max(0, at - _LINE_CAP // 3)
    return line[start : start + _LINE_CAP]


def _raw_lines(text: str, start: int, end: int, n: int) -> list[str]:
    # Searches stay within a bounded span, so many findings on one huge line
    # cost a constant each instead of rescanning the line.
    floor, ceil = max(0, start - _SPAN), min(len(text), end + _SPAN)
    lo, hi = start, end
    for _ in range(n + 1):  # back to the start of the n-th line above
        lo = text.rfind("\n", floor, lo)
        if lo < 0:
            break
    for _ in range(n + 1):  # on to the end of the n-th line below
        hi = text.find("\n", hi, ceil)
        if hi < 0:
            break
        hi += 1
    lo = floor if lo < 0 else lo + 1
    hi = ceil if hi < 0 else hi - 1
    if hi - lo > 2 * _SPAN // 3:  # minified: keep a window, not long lines
        lo, hi = max(lo, start - WINDOW), min(hi, end + WINDOW)
    return text[lo:hi].split("\n")


def context_lines(
    text: str, start: int, end: int, n: int, value: str, redacted: str, *, beautify: bool = True
) -> tuple[str, ...]:
    """About `n` lines either side of text[start:end], with `value` replaced by
    `redacted`. Minified code (long lines) is beautified in a window first."""
    # Look for the line's ends only _LONG_LINE away: not finding one is the answer.
    prev_nl = text.rfind("\n", max(0, start - _LONG_LINE), start)
    next_nl = text.find("\n", end, end + _LONG_LINE)
    line_start = prev_nl + 1 if prev_nl >= 0 or start <= _LONG_LINE else start - _LONG_LINE
    line_end = next_nl if next_nl >= 0 else min(len(text), end + _LONG_LINE + 1)
    long_line = line_end - line_start > _LONG_LINE
    lines: list[str] = []
    if beautify and long_line:
        lo = max(line_start, start - WINDOW)
        # start the window after a statement or item boundary when one is close
        cut = max(text.rfind(ch, lo, max(lo, start - WINDOW // 2)) for ch in ";,{}")
        lo = cut + 1 if cut >= 0 else lo
        pretty = _beautify(text[lo : min(len(text), end + WINDOW)]).split("\n")
        hit = next((i for i, ln in enumerate(pretty) if value[:40] in ln), None)
        if hit is not None:
            lines = pretty[max(0, hit - n) : hit + n + 1]
    if not lines:
        lines = _raw_lines(text, start, end, n)
    # Redact before clipping, so a clipped line cannot keep part of the secret;
    # a secret spanning lines (a PEM block) is redacted line by line.
    parts = [p for p in value.split("\n") if len(p.strip()) >= 4] if "\n" in value else []
    out = []
    for ln in lines:
        ln = ln.replace(value, redacted)
        for part in parts:
            ln = ln.replace(part, "…")
        out.append(_clip(ln, redacted))
    return tuple(out)


# --- whole files ------------------------------------------------------------

_CACHE_MAX = 32
_cache: OrderedDict[str, str] = OrderedDict()
_lock = threading.Lock()
_pool: concurrent.futures.ProcessPoolExecutor | None = None


def _executor() -> concurrent.futures.ProcessPoolExecutor:
    global _pool
    if _pool is None:
        from ..core.procpool import spawn_pool

        _pool = spawn_pool(1)
    return _pool


def _kill_pool() -> None:
    """A worker stuck on a huge file cannot be cancelled: end it and start over."""
    global _pool
    if _pool is None:
        return
    for proc in list(getattr(_pool, "_processes", {}).values()):
        proc.terminate()
    _pool.shutdown(wait=False, cancel_futures=True)
    _pool = None


def beautify_file(text: str, timeout: float = 30.0, cache_dir: str | Path | None = None) -> str:
    """Beautified `text`, computed in a worker process. Raises TimeoutError
    when it takes longer than `timeout` seconds (the worker is killed).
    Results are cached by sha256 of the content: in memory (LRU) and, when
    `cache_dir` is given, as files there."""
    key = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    path = Path(cache_dir) / f"{key}.js" if cache_dir else None
    if path is not None and path.is_file():
        result = path.read_text(encoding="utf-8")
    else:
        with _lock:
            future = _executor().submit(_beautify, text)
        try:
            result = future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            with _lock:
                _kill_pool()
            raise TimeoutError(f"beautifying {len(text)} characters took over {timeout}s") from None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(result, encoding="utf-8")
            tmp.replace(path)
    with _lock:
        _cache[key] = result
        while len(_cache) > _CACHE_MAX:
            _cache.popitem(last=False)
    return result
