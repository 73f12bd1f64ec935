"""Export a project's inventory and change events: json, jsonl, csv, md, html.

Everything scanned hosts sent is hostile. It is cleaned when stored
(pipeline/persist.py), and again here on the way out, for every format: a
database made by an older release holds raw text. No export carries escape
sequences, control characters (C0 but newline, C1) or bidi overrides; a
finding's `context` keeps its newlines. HTML and Markdown escape every value
(the HTML report also forbids scripts with a CSP).

CSV cells that a spreadsheet would run as formulas (starting with `=`, `+`,
`-`, `@`, a tab or a carriage return, or their full-width forms, after any
leading spaces) are neutralised as OWASP recommends: a leading apostrophe,
and the cell quoted. A real negative number (`-1`, `-2.5`: digits only, as
stored numbers are written) stays a number, which no spreadsheet evaluates.
Secret values never leave: findings carry their redacted form only (API
endpoint findings, which are paths rather than secrets, keep theirs).

Event rules apply as in the feed: events a suppress rule matches are left out
(their number is in the metadata: `events_suppressed`, and a line in the md
and html reports), rule-acknowledged ones are marked `acknowledged`.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from .core.sanitize import clean_lines, clean_text
from .secrets.redact import mask_secrets
from .store import repo
from .store.event_log import SEVERITIES, list_feed
from .store.models import Finding, Scan, as_utc, utcnow

Doc = dict[str, Any]  # what collect() returns
Row = dict[str, Any]  # one exported record

FORMATS = ("json", "jsonl", "csv", "md", "html")
SECTIONS = (("hosts", "host"), ("dns", "dns"), ("services", "service"), ("http", "http"), ("findings", "finding"))
# Columns the human-readable formats show (json, jsonl and csv carry every field).
COLUMNS = {
    "event": ("scan", "severity", "type", "summary", "acknowledged", "created_at"),
    "host": ("name", "is_address", "dns_status", "first_seen", "last_seen"),
    "dns": ("host", "rtype", "value", "ttl", "last_seen"),
    "service": ("host", "port", "service", "banner", "last_seen"),
    "http": ("url", "status", "title", "server", "tech", "content_length", "last_seen"),
    "finding": ("severity", "kind", "rule", "host", "location", "line", "value", "verified", "last_seen"),
}


def export(project: str | int, fmt: str, since_scan: int | None = None) -> str:
    """The whole report as text. `since_scan` keeps events of later scans only."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    doc = collect(project, since_scan)
    return {"json": _json, "jsonl": _jsonl, "csv": _csv, "md": _markdown, "html": _html}[fmt](doc)


# -- where an export goes ----------------------------------------------------------------------

CWD_VARIABLE = "ASSETMON_CWD"  # start.sh sets it to the caller's folder before it changes into the repository


class ExportPathError(ValueError):
    """A path an export cannot be written to: one line naming it."""


def user_folder() -> Path:
    """The folder the user started AssetMon from (start.sh changes into the
    repository, so it passes the caller's folder as $ASSETMON_CWD)."""
    given = os.environ.get(CWD_VARIABLE, "").strip()
    if given:
        folder = Path(given).expanduser()
        if folder.is_absolute() and folder.is_dir():
            return folder
    return Path(os.getcwd())


def output_path(text: str, folder: Path | None = None) -> Path:
    """A typed file name as an absolute path: `~` expanded, a relative one in `folder`
    (default: the user's folder). ExportPathError when it cannot be a file."""
    text = text.strip()
    if not text:
        raise ExportPathError("type a file name")
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = (folder or user_folder()) / path
    if path.is_dir():
        raise ExportPathError(f"{path} is a folder: give a file name")
    parent = path.parent
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        raise ExportPathError(f"cannot write {path}: the folder {parent} {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportPathError(f"cannot write {path}: the folder {parent} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise ExportPathError(f"cannot write {path}: the file is not writable")
    return path


def write_file(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all (a temporary file beside it,
    then a rename); every failure is one ExportPathError naming `path`."""
    path = output_path(str(path))
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise ExportPathError(f"cannot write {path}: {exc.strerror or exc}") from None


def collect(project: str | int, since_scan: int | None = None) -> Doc:
    p = repo.get_project(project)
    assert p.id is not None  # a stored row

    def seen(row: Any) -> Row:
        return {
            "first_seen": _time(row.first_seen),
            "last_seen": _time(row.last_seen),
            "first_scan": row.first_scan_id,
            "last_scan": row.last_scan_id,
        }

    inventory = {
        "hosts": [
            {"name": h.name, "is_address": h.is_address, "dns_status": h.dns_status, **seen(h)}
            for h in repo.hosts(p.id)
        ],
        "dns": [
            {"host": name, "rtype": r.rtype, "value": r.value, "ttl": r.ttl, **seen(r)}
            for r, name in repo.dns_records(p.id)
        ],
        "services": [
            {"host": name, "port": s.port, "service": s.service, "banner": s.banner, **seen(s)}
            for s, name in repo.services(p.id)
        ],
        "http": [
            {
                "host": name,
                "url": e.url,
                "status": e.status,
                "title": e.title,
                "server": e.server,
                "content_type": e.content_type,
                "content_length": e.content_length,
                "tech": e.tech,
                "final_url": e.final_url,
                "response_ms": e.response_ms,
                "tls": _loads(e.tls),
                "favicon_hash": e.favicon_hash,
                "error": e.error,
                **seen(e),
            }
            for e, name in repo.endpoints(p.id)
        ],
        "findings": _findings(repo.findings(p.id), seen),
    }
    latest = next((scan for scan in repo.list_scans(p.id, limit=50) if scan.status == "done"), None)
    feed = list_feed(p.id, since_scan=since_scan, limit=None, include_suppressed=True)
    events = [item for item in reversed(feed) if not item.suppressed]
    doc = {
        "project": p.name,
        "generated_at": _time(utcnow()),
        "events_suppressed": len(feed) - len(events),  # by event rules: left out
        "latest_scan": _scan(latest) if latest else None,
        "inventory": inventory,
        "events": [
            {
                "type": item.event.type,
                "severity": item.event.severity,
                "summary": item.event.summary,
                "scan": item.event.scan_id,
                "prev_scan": item.event.prev_scan_id,
                "entity": item.event.entity,
                "acknowledged": item.acknowledged,  # by hand or by an acknowledge rule
                "created_at": _time(item.event.created_at),
            }
            for item in events
        ],
    }
    cleaned: Doc = _clean(doc)
    return cleaned


_LIMIT = 65536  # cleaning on the way out removes, it does not shorten


def _clean(value: Any, key: str = "") -> Any:
    """Every string in the document, keys included, without escapes or control
    characters; `context` (code lines) keeps its newlines."""
    if isinstance(value, str):
        return clean_lines(value, _LIMIT) if key == "context" else clean_text(value, _LIMIT)
    if isinstance(value, dict):
        return {clean_text(k, 255): _clean(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v, key) for v in value]
    return value


def _scan(scan: Scan) -> Row:
    """The latest done scan: its inventory counts and the sources that failed or did not run."""
    sources = _loads(scan.sources) if scan.sources else []
    return {
        "id": scan.id,
        "finished_at": _time(scan.finished_at),
        "inventory": _loads(scan.summary).get("inventory", {}),
        "warnings": [s for s in sources if isinstance(s, dict) and s.get("status") != "ok"],
    }


def _warning_lines(doc: Doc) -> list[str]:
    scan = doc.get("latest_scan") or {}
    return [
        f"scan {scan['id']}: {w.get('source')}: {w.get('status')}" + (f" ({w['reason']})" if w.get("reason") else "")
        for w in scan.get("warnings", [])
    ]


def _findings(rows: list[tuple[Finding, str]], seen: Callable[[Any], Row]) -> list[Row]:
    """Each finding with its context masked of every secret of its file, not only its own."""
    by_file: dict[str, list[Finding]] = {}
    for f, _ in rows:
        by_file.setdefault(f.location, []).append(f)
    return [_finding(f, host, seen(f), by_file[f.location] if f.location else [f]) for f, host in rows]


def _finding(f: Finding, host: str, seen: Row, same_file: list[Finding]) -> Row:
    shown = f.value if f.kind == "endpoint" else f.redacted
    return {
        "kind": f.kind,
        "rule": f.rule,
        "severity": f.severity,
        "confidence": f.confidence,
        "host": host,
        "location": mask_secrets(f.location, same_file),  # a token in a URL's query
        "line": f.line,
        "column": f.column,
        "value": shown,
        "context": mask_secrets(f.context or "", same_file),
        "fingerprint": f.fingerprint,
        "verified": f.verified,  # a secret's live check: "" | verified | invalid | unknown
        "verified_at": _time(f.verified_at),
        "verify_reason": f.verify_reason,
        **seen,
    }


def _time(value: datetime | None) -> str | None:
    value = as_utc(value)
    return value.isoformat() if value else None


def _loads(text: str) -> Any:
    try:
        return json.loads(text or "{}")
    except ValueError:
        return {}


def _rows(doc: Doc) -> list[tuple[str, Row]]:
    rows = [(section, row) for key, section in SECTIONS for row in doc["inventory"][key]]
    return rows + [("event", e) for e in doc["events"]]


# -- machine formats ---------------------------------------------------------------------


def _json(doc: Doc) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _jsonl(doc: Doc) -> str:
    lines: list[Row] = [
        {
            "section": "meta",
            "project": doc["project"],
            "generated_at": doc["generated_at"],
            "events_suppressed": doc["events_suppressed"],
            "latest_scan": doc["latest_scan"],
        }
    ]
    lines += [{"section": section, **row} for section, row in _rows(doc)]
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def _csv(doc: Doc) -> str:
    """One table: a `section` column, then the union of every section's fields."""
    rows = _rows(doc)
    fields = ["section"]
    for _, row in rows:
        fields += [k for k in row if k not in fields]
    lines = [",".join(_csv_field(f) for f in fields)]
    for section, row in rows:
        cells = {"section": section, **row}
        lines.append(",".join(_csv_field(_cell(cells.get(f))) for f in fields))
    return "".join(line + "\n" for line in lines)


_FORMULA = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False)
    text = str(value)
    if text.lstrip(" ")[:1] in _FORMULA and not _NUMBER.fullmatch(text):
        return "'" + text  # a spreadsheet would evaluate it
    return text


def _csv_field(text: str) -> str:
    """RFC 4180, quoting a neutralised formula cell too (OWASP: apostrophe and quotes)."""
    if text[:1] == "'" or any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


# -- human formats -----------------------------------------------------------------------


def _summary(doc: Doc) -> tuple[list[tuple[str, int]], Counter[str]]:
    inv = doc["inventory"]
    counts = [
        ("hosts", len(inv["hosts"])),
        ("DNS records", len(inv["dns"])),
        ("open ports", len(inv["services"])),
        ("web endpoints", len(inv["http"])),
        ("findings", len(inv["findings"])),
        ("events", len(doc["events"])),
    ]
    return counts, Counter(e["severity"] for e in doc["events"])


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    return clean_text(value, 300)


def _tables(doc: Doc) -> list[tuple[str, str, list[Row]]]:
    titles = {
        "host": "Hosts",
        "dns": "DNS records",
        "service": "Open ports",
        "http": "Web endpoints",
        "finding": "Findings",
    }
    tables = [("Events", "event", list(reversed(doc["events"])))]  # newest first for reading
    return tables + [(titles[section], section, doc["inventory"][key]) for key, section in SECTIONS]


def _suppressed_line(n: int) -> str:
    return f"{n} event{'s' if n != 1 else ''} suppressed by event rules {'are' if n != 1 else 'is'} left out."


def _md_cell(value: Any) -> str:
    text = html.escape(_text(value), quote=False).replace("\\", "\\\\")
    for ch in "|[]`*_":
        text = text.replace(ch, "\\" + ch)
    return text


def _markdown(doc: Doc) -> str:
    counts, severities = _summary(doc)
    out = [
        f"# AssetMon report: {_md_cell(doc['project'])}",
        "",
        f"Generated {doc['generated_at']}",
        "",
        "| " + " | ".join(name for name, _ in counts) + " |",
        "|" + "---|" * len(counts),
        "| " + " | ".join(str(n) for _, n in counts) + " |",
        "",
    ]
    if doc["events_suppressed"]:
        out += [_suppressed_line(doc["events_suppressed"]), ""]
    if _warning_lines(doc):
        out += ["Warnings (what these sources found before is kept):", ""]
        out += [f"- {_md_cell(line)}" for line in _warning_lines(doc)] + [""]
    if severities:
        out += [
            "Events by severity: " + ", ".join(f"{s} {severities[s]}" for s in reversed(SEVERITIES) if severities[s]),
            "",
        ]
    for title, section, rows in _tables(doc):
        cols = COLUMNS[section]
        out += [f"## {title} ({len(rows)})", ""]
        if not rows:
            out += ["None.", ""]
            continue
        out += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        out += ["| " + " | ".join(_md_cell(row.get(c)) for c in cols) + " |" for row in rows]
        out.append("")
    return "\n".join(out)


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}
table{border-collapse:collapse;width:100%;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top;word-break:break-word}
th{background:#f0f0f0}.cards{display:flex;flex-wrap:wrap;gap:.5em}
.card{border:1px solid #ccc;border-radius:4px;padding:.5em 1em}.card b{display:block;font-size:1.4em}
.critical{background:#f8d0d0}.high{background:#fbe0c8}.medium{background:#fff3c4}.low{background:#e6f0fa}
"""


def _html(doc: Doc) -> str:
    def e(value: Any) -> str:
        return html.escape(_text(value), quote=True)

    counts, severities = _summary(doc)
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # No script, image or font may load: the report is inert even if a value slipped through.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>AssetMon report: {e(doc['project'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>AssetMon report: {e(doc['project'])}</h1>",
        f"<p>Generated {e(doc['generated_at'])}</p>",
        '<div class="cards">',
    ]
    out += [f'<div class="card"><b>{n}</b>{e(name)}</div>' for name, n in counts]
    out.append("</div>")
    if doc["events_suppressed"]:
        out.append(f"<p>{e(_suppressed_line(doc['events_suppressed']))}</p>")
    if _warning_lines(doc):
        out.append("<p>Warnings (what these sources found before is kept):</p><ul>")
        out += [f"<li>{e(line)}</li>" for line in _warning_lines(doc)]
        out.append("</ul>")
    if severities:
        out.append(
            "<p>Events by severity: "
            + ", ".join(f'<span class="{s}">{s} {severities[s]}</span>' for s in reversed(SEVERITIES) if severities[s])
            + "</p>"
        )
    for title, section, rows in _tables(doc):
        cols = COLUMNS[section]
        out.append(f"<h2>{e(title)} ({len(rows)})</h2>")
        if not rows:
            out.append("<p>None.</p>")
            continue
        out.append("<table><thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in cols) + "</tr></thead><tbody>")
        for row in rows:
            css = row.get("severity") if row.get("severity") in SEVERITIES else ""
            out.append(f'<tr class="{css}">' + "".join(f"<td>{e(row.get(c))}</td>" for c in cols) + "</tr>")
        out.append("</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
