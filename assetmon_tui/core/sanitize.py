"""Make text from scanned hosts safe to store and show.

Anything a host sends (titles, headers, banners, JavaScript) is hostile: it may
carry terminal escape sequences (clear screen, OSC 52 clipboard writes, window
titles) or Rich markup. We strip control characters at ingestion, cap sizes,
and the UI renders such text as plain `rich.text.Text`, never as markup.
"""

from __future__ import annotations

import re

# C0 controls except tab/newline, DEL, C1 controls, and Unicode bidi overrides
# (which can visually reorder what a user reads).
# C0/C1 controls, bidi overrides, and lone surrogates (JSON "\ud800": text no
# database or terminal can encode; one in a CT answer used to fail a scan)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")


def clean_text(value: object, limit: int = 512, *, single_line: bool = True) -> str:
    """Return `value` as printable text: escapes removed, control characters
    dropped, whitespace folded (when single_line) and capped to `limit` chars."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value)
    if len(text) > limit * 4:  # bound the regex work on huge input
        text = text[: limit * 4]
    text = _ANSI.sub("", text)
    text = _CONTROL.sub("", text)
    if single_line:
        text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def escape_markup(text: str) -> str:
    """Escape Rich markup (`[bold]`) for the rare places that take markup."""
    return text.replace("\\", "\\\\").replace("[", "\\[")
