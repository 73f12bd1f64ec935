"""Process pools for CPU-heavy work (secret analysis, beautifying) that must
not share the TUI's process and GIL."""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import multiprocessing.resource_tracker
import sys


def spawn_pool(max_workers: int = 1) -> concurrent.futures.ProcessPoolExecutor:
    """A pool of spawned workers (forking a threaded process can deadlock the
    child). Textual replaces sys.stderr with an object without a real file
    descriptor, which multiprocessing's resource tracker would hand to its
    child: give it the real one while the pool is set up."""
    with contextlib.ExitStack() as stack:
        if sys.stderr is not sys.__stderr__ and sys.__stderr__ is not None:
            saved = sys.stderr
            sys.stderr = sys.__stderr__
            stack.callback(setattr, sys, "stderr", saved)
        pool = concurrent.futures.ProcessPoolExecutor(max_workers, mp_context=multiprocessing.get_context("spawn"))
        multiprocessing.resource_tracker.ensure_running()
        return pool
