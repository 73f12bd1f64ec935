"""Secrets stay hidden wherever text around them is shown: a finding's
context, a beautified file, an export. A context often holds several secrets
of the same file; masking only its own finding's value would show the others
in clear, so every hidden value of the file is masked at once."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any


def hidden(finding: Any) -> bool:
    """Whether a finding's value is a secret, shown only when revealed (an API
    endpoint's path is not)."""
    return bool(finding.value) and not (finding.kind == "endpoint" and not finding.redacted)


def mask_secrets(text: str, findings: Iterable[Any], keep: str = "") -> str:
    """`text` with the value of every hidden finding replaced by its redacted
    form, except `keep` (the one revealed value). A value spanning lines (a
    PEM block) is also redacted line by line, as stored contexts are."""
    masks: dict[str, str] = {}
    for f in findings:
        if not hidden(f) or f.value == keep:
            continue
        masks[f.value] = f.redacted or "[redacted]"
        for part in f.value.split("\n") if "\n" in f.value else ():
            if len(part.strip()) >= 4:
                masks.setdefault(part, "…")
    if not masks:
        return text
    alternatives = sorted({*masks, *([keep] if keep else [])}, key=len, reverse=True)  # the longest first
    pattern = re.compile("|".join(map(re.escape, alternatives)))
    return pattern.sub(lambda m: m.group() if m.group() == keep else masks[m.group()], text)
