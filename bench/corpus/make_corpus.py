"""Plant synthetic secrets of every rule type into real JavaScript bundles.

Used by bench/bench_secrets.py to measure recall. Each secret is planted the
way real code carries it: as a new statement after a `;` (a string literal,
an object field, a URL, a template literal) or, for bare tokens, inside an
existing string literal after a space. Positions are random but never
overlap, so each planted secret stands alone.

    python bench/corpus/make_corpus.py OUT_DIR FILE.js [FILE.js ...]
"""

from __future__ import annotations

import json
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from assetmon_tui.secrets.samples import SAMPLES

_STRING = re.compile(r'"[A-Za-z][A-Za-z0-9 _\-]{2,40}"')


@dataclass(frozen=True)
class Planted:
    rule_id: str
    secret: str
    line: int  # where the secret starts in the planted file, 1-based
    column: int


def plant(text: str, rng: random.Random, per_rule: int = 1) -> tuple[str, list[Planted]]:
    """Return the text with `per_rule` secrets of every rule planted."""
    statement_slots = [m.end() for m in re.finditer(";", text)]
    string_slots = [m.end() - 1 for m in _STRING.finditer(text)]  # before the closing quote
    inserts: list[tuple[int, str, str, str]] = []  # (offset, insert text, rule, secret)
    used: set[int] = set()
    for rule_id in sorted(SAMPLES):
        for _ in range(per_rule):
            snippet, secret = SAMPLES[rule_id](rng)
            bare = snippet == f'"{secret}"'
            if bare and string_slots and rng.random() < 0.5:
                slots, piece = string_slots, " " + secret
            else:
                slots, piece = statement_slots, f"var _p{len(inserts)}={snippet};"
            offset = rng.choice(slots)
            while offset in used:
                offset = rng.choice(slots)
            used.add(offset)
            inserts.append((offset, piece, rule_id, secret))
    inserts.sort()
    out, planted, last = [], [], 0
    line, line_start, built = 1, 0, 0  # position bookkeeping in the output text
    for offset, piece, rule_id, secret in inserts:
        chunk = text[last:offset]
        out.append(chunk)
        line += chunk.count("\n")
        if "\n" in chunk:
            line_start = built + chunk.rfind("\n") + 1
        built += len(chunk)
        pre = piece[: piece.index(secret)]
        start = built + pre.rfind("\n") + 1 if "\n" in pre else line_start
        planted.append(Planted(rule_id, secret, line + pre.count("\n"), built + len(pre) - start + 1))
        out.append(piece)
        line += piece.count("\n")
        if "\n" in piece:
            line_start = built + piece.rfind("\n") + 1
        built += len(piece)
        last = offset
    out.append(text[last:])
    return "".join(out), planted


def main(argv: list[str]) -> int:
    out_dir, files = Path(argv[0]), argv[1:]
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(1)
    manifest = {}
    for name in files:
        text, planted = plant(Path(name).read_text(encoding="utf-8"), rng)
        (out_dir / Path(name).name).write_text(text, encoding="utf-8")
        manifest[Path(name).name] = [p.__dict__ for p in planted]
    (out_dir / "planted.json").write_text(json.dumps(manifest, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
