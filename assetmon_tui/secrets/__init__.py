"""Secrets and endpoints in JavaScript (and any text): detection engine.

Pure Python on RE2; no UI, database or task-queue imports.
"""

from .engine import SecretFinding, scan_bytes, scan_text
from .rules import RULES, Rule

__all__ = ["RULES", "Rule", "SecretFinding", "scan_bytes", "scan_text"]
