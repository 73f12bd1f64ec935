"""Whole-file beautification in a worker process."""

from __future__ import annotations

import pytest

from assetmon_tui.secrets import beautify
from assetmon_tui.secrets.beautify import beautify_file

pytestmark = pytest.mark.one_store  # the store is not what this tests: the SQLite pass is enough


def test_beautify_file_and_cache(tmp_path):
    src = "function a(b){if(b){return 1}else{return 2}}var c={d:1,e:[1,2]};"
    out = beautify_file(src, timeout=60, cache_dir=tmp_path)
    assert "function a(b) {" in out and out.count("\n") > 5
    assert len(list(tmp_path.glob("*.js"))) == 1
    beautify._cache.clear()
    assert beautify_file(src, timeout=60, cache_dir=tmp_path) == out  # from the cache dir


def test_beautify_file_times_out():
    big = "var a=" + "[" * 2000 + "1" + "]" * 2000 + ";" + "x(1,2);" * 300_000
    with pytest.raises(TimeoutError):
        beautify_file(big, timeout=0.5)
    assert beautify_file("var a=1", timeout=60).strip() == "var a = 1"  # pool recovered
