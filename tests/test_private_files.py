"""Our files hold secrets (the database, stored JavaScript bodies, logs,
exports): 0600 in 0700 folders whatever the umask, in a real process."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from assetmon_tui.testing import ROOT

SCRIPT = """
import sys
from assetmon_tui.cli import main
from assetmon_tui.store import repo
from assetmon_tui.store.blobs import save_blob
assert main(["init-db"]) == 0
repo.create_project("acme")
save_blob(b"const KEY = 'AKIA...';")
sys.exit(main(["export", "acme", "--format", "csv", "-o", sys.argv[1]]))
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_are_private_under_umask_022(tmp_path):
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True, mode=0o755)  # an older install's folder: closed again
    os.chmod(home / "data", 0o755)
    report = tmp_path / "report.csv"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"ASSETMON_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(report)],
        cwd=ROOT,
        env=env,
        preexec_fn=lambda: os.umask(0o022),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    folders = [p for p in home.rglob("*") if p.is_dir()]
    files = [p for p in home.rglob("*") if p.is_file()]
    assert {home / "data", home / "state"} <= set(folders)
    assert any(p.suffix == ".db" for p in files) and len(files) >= 2  # the database and a blob at least
    assert {str(p): oct(mode(p)) for p in folders if mode(p) != 0o700} == {}
    assert {str(p): oct(mode(p)) for p in files if mode(p) & 0o077} == {}
    assert mode(report) == 0o600
