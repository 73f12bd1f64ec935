"""Text from hostile hosts is clean in the store and in every export format.

A loopback web server sends a page whose title and headers carry terminal
escapes (an OSC 52 clipboard write, a screen clear, 8-bit CSI, bidi
overrides) and formula text, and a script with a secret whose neighbouring
lines carry the same. After a real scan (http and js steps) nothing stored
and no export holds a control byte, the CSV has no formula cell, and the
secret stays redacted. A database written raw (by an older release) exports
clean too.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re

import pytest
from sqlmodel import select
from support.loopback import HttpServer, page
from support.scenario import make_project

from assetmon_tui.core.config import get_settings
from assetmon_tui.export import FORMATS, _cell, _csv_field, export
from assetmon_tui.pipeline.persist import save_dns, save_http, save_js, save_takeovers
from assetmon_tui.pipeline.persist import save_services as save_ports
from assetmon_tui.pipeline.run import Run, run_scan
from assetmon_tui.scanners.dns import DnsRecord as Rec
from assetmon_tui.scanners.dns import DnsResult
from assetmon_tui.scanners.http import HttpResult
from assetmon_tui.scanners.js import JsFile, analyse
from assetmon_tui.scanners.ports import PortResult
from assetmon_tui.scanners.takeover import TakeoverFinding
from assetmon_tui.store import leases, repo
from assetmon_tui.store.db import session
from assetmon_tui.store.models import DnsRecord, Finding, HttpEndpoint, Service

# C0 but newline, DEL, C1, bidi embeddings/overrides/isolates/marks, separators, BOM
# PostgreSQL text can never hold NUL, so only an older SQLite database has it raw
RAW_NUL = "" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "\x00"
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")
FORMULA = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")

KEY_ID = "AKIAWNM3XT6XBLV4Q7KU"
ESCAPES = "\x1b]52;c;ZXZpbA==\x07\x1b[2J\x1b]0;pwned\x1b\\\x08\x7f\x9b2J\x85"  # no NUL: a script with one is binary
BIDI = "\u202e\u2066\u200f\u061c"
TITLE = f'=HYPERLINK("http://x") {ESCAPES}{BIDI} Home'
SCRIPT = (
    f"// {ESCAPES} {BIDI} clipboard\n"
    f"=cmd|' /C calc'!A0\t{ESCAPES}\r\n"
    f'const AWS_ACCESS_KEY_ID = "{KEY_ID}"; // {ESCAPES}\n'
    f"@SUM(1+1)*cmd|' /C calc'!A0 {BIDI}\n"
    'fetch("/api/v1/users");\n'
)


def assert_clean(text: str, where: str) -> None:
    bad = sorted({f"U+{ord(ch):04X}" for ch in CONTROL.findall(text)})
    assert not bad, f"{where}: control characters {bad}"


def assert_no_formula_cells(text: str) -> None:
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            if cell.lstrip(" ")[:1] in FORMULA:
                assert NUMBER.fullmatch(cell), f"formula cell {cell!r}"


@pytest.fixture
def hostile_web():
    html = (
        f"<html><head><title>{TITLE}</title></head>"
        f'<body><script src="/app.js"></script><a href="/a">{ESCAPES}\x00</a></body></html>'
    )
    # Header values travel as latin-1: 8-bit C1 controls (CSI \x9b, NEL \x85) get through
    # where ESC would be refused by the client's parser.
    headers = {"Server": "nginx\x9b2J\x85 =1+1", "X-Powered-By": "-2+3\x9b0m"}
    routes = {
        "/": page(html, headers=headers),
        "/app.js": page(SCRIPT, content_type="application/javascript"),
    }
    with HttpServer(routes) as web:
        yield web


def test_a_scan_of_a_hostile_host_stores_and_exports_clean_text(hostile_web):
    project = repo.create_project("acme")
    assert project.id is not None
    repo.add_targets(project.id, [f"{hostile_web.url}/"])
    scan = repo.new_scan(project.id, ["http", "js"], {})
    assert scan.id is not None
    progress = run_scan(scan.id, lambda p: None, "thread")
    assert progress.state == "done", progress

    endpoints = repo.endpoints(project.id)
    (home,) = [e for e, _ in endpoints if e.url.endswith("/") and e.title]
    assert "HYPERLINK" in home.title and "Home" in home.title
    assert "nginx" in home.server
    findings = repo.findings(project.id)
    secrets = [f for f, _ in findings if f.kind == "secret"]
    assert secrets, "the planted key is found"
    for f, _ in findings:
        for field in ("rule", "location", "value", "redacted", "context"):
            assert_clean(getattr(f, field) or "", f"stored finding.{field}")
    (secret,) = [f for f in secrets if f.value == KEY_ID]
    assert "\n" in secret.context, "the lines around the secret keep their newlines"
    assert "clipboard" in secret.context and KEY_ID not in secret.context
    for e, _ in endpoints:
        for field in ("url", "title", "server", "content_type", "redirects", "final_url", "tls", "tech", "error"):
            assert_clean(str(getattr(e, field) or ""), f"stored http.{field}")

    for fmt in FORMATS:
        text = export("acme", fmt)
        assert_clean(text.replace("\n", ""), fmt)
        assert "\x1b" not in text and "]52;" not in text and "[2J" not in text, fmt
        assert KEY_ID not in text, f"{fmt}: the secret stays redacted"
    assert_no_formula_cells(export("acme", "csv"))
    rows = list(csv.DictReader(io.StringIO(export("acme", "csv"))))
    (title_row,) = [r for r in rows if r["section"] == "http" and "HYPERLINK" in (r.get("title") or "")]
    assert title_row["title"].startswith("'=HYPERLINK")
    doc = json.loads(export("acme", "json"))
    (ctx,) = [f["context"] for f in doc["inventory"]["findings"] if f["kind"] == "secret"]
    assert "\n" in ctx and "AKIA" in ctx


def test_a_database_with_raw_text_exports_clean():
    """Rows an older release stored raw (no cleaning at ingestion) are cleaned on the way out."""
    project = repo.create_project("acme")
    assert project.id is not None
    repo.add_targets(project.id, ["raw.acme.test"])
    scan = repo.create_scan(project.id, ["http"], {})
    assert scan.id is not None
    raw = f"{ESCAPES}{RAW_NUL}{BIDI}"
    with session() as s:
        host_id = repo.upsert_host(s, project.id, "raw.acme.test", scan.id)
        repo.upsert(
            s,
            HttpEndpoint,
            {"host_id": host_id, "url": f"http://raw.acme.test/{raw}"},
            {"status": 200, "title": f"+{raw}SUM(A1)", "server": raw, "tls": json.dumps({"issuer": raw})},
            scan.id,
        )
        repo.upsert(s, Service, {"host_id": host_id, "port": 22}, {"banner": f"@{raw}", "service": "ssh"}, scan.id)
        repo.upsert(s, DnsRecord, {"host_id": host_id, "rtype": "TXT", "value": f"-{raw}1+1"}, {"ttl": 60}, scan.id)
        repo.upsert(
            s,
            Finding,
            {"project_id": project.id, "fingerprint": "f" * 64},
            {
                "host_id": host_id,
                "kind": "secret",
                "rule": f"rule{raw}",
                "severity": "high",
                "confidence": "high",
                "location": f"http://raw.acme.test/app.js{raw}",
                "value": KEY_ID,
                "redacted": "AKIA…Q7KU",
                "context": f"line one {raw}\n=line two {KEY_ID}\t\r\nline three",
            },
            scan.id,
        )
        s.commit()
    for fmt in FORMATS:
        text = export("acme", fmt)
        assert_clean(text.replace("\n", ""), fmt)
        assert KEY_ID not in text, fmt
    assert_no_formula_cells(export("acme", "csv"))
    doc = json.loads(export("acme", "json"))
    (finding,) = doc["inventory"]["findings"]
    assert finding["context"] == "line one \n=line two AKIA…Q7KU    \nline three"


@pytest.mark.parametrize(
    "value,cell",
    [
        ("=1+1", "'=1+1"),
        ("+1+1", "'+1+1"),
        ("-1+1", "'-1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("  =1+1", "'  =1+1"),  # spreadsheets skip leading spaces
        ("\uff1dcmd", "'\uff1dcmd"),  # full-width equals
        ("-", "'-"),
        ("-1e5", "'-1e5"),  # not the way a stored number is written
        (-1, "-1"),  # real negative numbers stay numbers
        ("-2.5", "-2.5"),
        (3, "3"),
        ("plain", "plain"),
        ("a=b", "a=b"),
    ],
)
def test_formula_cells_are_neutralised(value, cell):
    assert _cell(value) == cell


def test_neutralised_cells_are_quoted():
    assert _csv_field("'=1+1") == '"\'=1+1"'
    assert _csv_field('say "hi", then') == '"say ""hi"", then"'
    assert _csv_field("-1") == "-1" and _csv_field("plain") == "plain"


def test_every_saver_cleans_what_hosts_sent():
    """DNS values, banners, takeover details and every HTTP field, saved
    straight from scanner results (as a scanner that forgot to clean would
    hand them over), are stored and exported clean."""
    raw = f"{ESCAPES}\x00{BIDI}"
    project_id = make_project("acme", ["acme.test"])
    scan = repo.create_scan(project_id, ["dns"], {})
    assert scan.id is not None and leases.claim(scan.id, "thread", "test:1", 60, 3)
    ctx = Run(scan.id, lambda progress: None, get_settings(), "thread", "test:1").ctx
    save_dns(ctx, [DnsResult("www.acme.test", "ok", [Rec("www.acme.test", "TXT", f"=v{raw}spf1", 60)])])
    save_ports(ctx, [PortResult("10.0.0.1", 22, banner=f"@SSH-2.0{raw}", service=f"ssh{raw}")])
    save_takeovers(ctx, [TakeoverFinding("www.acme.test", "x.example.net", "x", "http-body", "high", "high", raw)])
    http = HttpResult(
        "http://www.acme.test/",
        "www.acme.test",
        80,
        "http",
        200,
        title=f"+{raw}",
        server=raw,
        content_type=raw,
        redirects=[f"http://www.acme.test/{raw}"],
        final_url=f"http://www.acme.test/{raw}",
        tls={"issuer": raw, "sans": [raw]},  # a hostile certificate's fields
        tech=[raw],
        cdn=raw,
    )
    save_http(ctx, [http])
    body = SCRIPT.encode()
    analysis = analyse(body, "http://www.acme.test/app.js", 1_000_000)
    save_js(ctx, [JsFile(f"http://www.acme.test/app.js{raw}", "www.acme.test", "0" * 64, len(body), body, analysis)])

    with session() as s:
        for model in (DnsRecord, Service, HttpEndpoint, Finding):
            for row in s.exec(select(model)):
                for name, value in row.model_dump().items():
                    if isinstance(value, str):
                        assert_clean(
                            value.replace("\n", "") if name == "context" else value, f"{model.__name__}.{name}"
                        )
    for fmt in FORMATS:
        text = export("acme", fmt)
        assert_clean(text.replace("\n", ""), fmt)
        assert KEY_ID not in text, fmt
    assert_no_formula_cells(export("acme", "csv"))
