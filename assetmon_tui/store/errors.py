"""One line for a problem that is the user's to fix: a bad setting, a damaged
or newer database, a database that cannot be reached, a file's mode. The CLI
prints it and exits 2; the TUI shows it where the work stopped."""

from __future__ import annotations

from sqlalchemy.exc import OperationalError

from ..core.config import SettingsError, get_settings, normalise_url
from .migrate import StoreUnusable


def explain(exc: BaseException) -> str | None:
    """What to tell the user about `exc`; None: a bug (keep the traceback)."""
    if isinstance(exc, (SettingsError, StoreUnusable)):  # a bad setting; a damaged or newer database
        return str(exc)
    if isinstance(exc, OperationalError):
        where = normalise_url(get_settings().db_url).rsplit("@", 1)[-1]  # never a password
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        return f"the database {where} cannot be used ({reason[:200]}): check DATABASE_URL and that it is running"
    if isinstance(exc, PermissionError):
        return f"{exc.filename or 'a file'}: permission denied: check its owner and mode, or set ASSETMON_HOME"
    return None
