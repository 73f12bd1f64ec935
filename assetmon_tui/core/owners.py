"""Runner identities ("host:pid") and the only evidence of a runner's death we
trust without waiting for its lease: a pid on this very host that is gone."""

from __future__ import annotations

import os
import socket


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def pid_alive(pid: int) -> bool:
    """The process exists and is not a zombie: a killed worker's pool children
    stay zombies where PID 1 does not reap orphans (containers), yet they run
    nothing."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Exited but not reaped (or gone since)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:  # gone since the signal, or no /proc at all (macOS: trust the signal)
        return os.path.isdir("/proc/self")
    except OSError:
        return False
    # "pid (comm) S ...": comm may hold spaces and parentheses, the state follows the last ")"
    return stat.rpartition(b")")[2][1:2] == b"Z"


def is_dead(owner: str) -> bool:
    """True only with evidence: `owner` is host:pid on this host and the pid is gone."""
    host, _, pid = owner.rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid))
