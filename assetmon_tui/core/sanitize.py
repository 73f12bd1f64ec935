"""Make text from scanned hosts safe to store and show.

Anything a host sends (titles, headers, banners, JavaScript) is hostile: it may
carry terminal escape sequences (clear screen, OSC 52 clipboard writes, window
titles) or Rich markup. We strip control characters at ingestion, cap sizes,
and the UI renders such text as plain `rich.text.Text`, never as markup.
"""

from __future__ import annotations

import re

# C0 controls except tab/newline, DEL, C1 controls, Unicode bidi controls
# (embeddings, overrides, isolates and the invisible marks: they can visually
# reorder what a user reads), line/paragraph separators, the BOM, and lone
# surrogates (JSON "\ud800": text no database or terminal can encode; one in
# a CT answer used to fail a scan).
_CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]"
)
# Escape sequences, 7-bit (ESC [ ...) and 8-bit (CSI \x9b, OSC \x9d), whole:
# removing only the control byte would leave their parameters ("2J") as text.
_ANSI = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[@-Z\\-_]"
)


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


def clean_lines(value: object, limit: int = 4096) -> str:
    """`clean_text` for text whose lines matter (the code around a secret):
    newlines kept, every other control character dropped, tabs made spaces."""
    return clean_text(value, limit, single_line=False).replace("\t", "    ")


def escape_markup(text: str) -> str:
    """Escape Rich markup (`[bold]`) for the rare places that take markup."""
    return text.replace("\\", "\\\\").replace("[", "\\[")
