"""Runner identities ("host:pid") and the only evidence of a runner's death we
trust without waiting for its lease: a pid on this very host that is gone."""

from __future__ import annotations

import os
import socket


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def is_dead(owner: str) -> bool:
    """True only with evidence: `owner` is host:pid on this host and the pid is gone."""
    host, _, pid = owner.rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid))
