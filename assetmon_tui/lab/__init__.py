"""`assetmon lab`: an offline fake company on loopback for demos, tests and benchmarks.

    from assetmon_tui.lab import Lab
    with Lab(mutate=0) as lab:
        lab.info["nameserver"], lab.estate.hosts, lab.estate.diff(0, 1)

`Estate` (estate.py) is the deterministic model and ground truth; `Lab`
(runtime.py) serves it. Pure Python: no textual/celery/sqlmodel imports.
"""

from .estate import Estate, diff
from .runtime import Lab

__all__ = ["Estate", "Lab", "diff"]
