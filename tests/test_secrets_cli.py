"""`assetmon secrets` CLI through a real subprocess."""

from __future__ import annotations

import http.server
import json
import random
import subprocess
import sys
import threading

import pytest

from assetmon_tui.secrets.samples import github_like

pytestmark = pytest.mark.one_store  # the store is not what this tests: the SQLite pass is enough

RUN = "from assetmon_tui.secrets.cli import main; import sys; sys.exit(main(sys.argv[1:]))"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True, timeout=60)


@pytest.fixture()
def tree(tmp_path):
    tok = github_like(random.Random(1), "ghp_")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.js").write_text(f'var a=1;\nvar t="{tok}";\n')
    (tmp_path / "app" / "clean.js").write_text("function f(){return 1}\n")
    (tmp_path / "app" / "blob.bin").write_bytes(b"\x00\x01" + tok.encode())  # not walked
    (tmp_path / "app" / ".env").write_text(f"DEBUG=1\nGITHUB_TOKEN={tok}\n")
    return tmp_path, tok


def test_json_output_and_exit_codes(tree):
    root, tok = tree
    res = run("--json", str(root / "app"))
    assert res.returncode == 0, res.stderr
    records = [json.loads(line) for line in res.stdout.splitlines()]
    assert {(r["source"].rsplit("/", 1)[-1], r["line"], r["column"]) for r in records} == {
        (".env", 2, 14),
        ("main.js", 2, 8),
    }
    for r in records:
        assert r["rule"] == "github-pat-classic" and r["severity"] == "critical"
        assert r["secret"] != tok and tok not in json.dumps(r)
        assert {"confidence", "fingerprint", "title"} <= r.keys()
    assert len({r["fingerprint"] for r in records}) == 1

    revealed = [json.loads(x) for x in run("--json", "--reveal", str(root / "app")).stdout.splitlines()]
    assert {r["secret"] for r in revealed} == {tok}

    assert run("--fail-on-findings", str(root / "app")).returncode == 1
    assert run("--fail-on-findings", str(root / "app" / "clean.js")).returncode == 0


def test_text_output(tree):
    root, tok = tree
    res = run(str(root / "app" / "main.js"))
    assert res.returncode == 0
    assert "CRITICAL" in res.stdout and "github-pat-classic" in res.stdout
    assert "main.js:2:8" in res.stdout and tok not in res.stdout


def test_unreadable_input_is_reported_and_others_still_scanned(tree):
    root, _ = tree
    res = run("--json", str(root / "missing.js"), str(root / "app" / "main.js"))
    assert res.returncode == 2
    assert "missing.js" in res.stderr and "cannot read" in res.stderr
    assert len(res.stdout.splitlines()) == 1


class _Handler(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):
        if self.path == "/app.js":
            self.send_response(200)
            self.send_header("Content-Type", "application/javascript")
            self.end_headers()
            self.wfile.write(self.body)
        else:
            self.send_error(404)

    def log_message(self, *args):
        pass


def test_urls_on_loopback():
    tok = github_like(random.Random(2), "ghp_")
    _Handler.body = f'!function(){{var k="{tok}"}}();'.encode()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        res = run("--json", f"{base}/app.js", f"{base}/missing.js")
    finally:
        server.shutdown()
    assert res.returncode == 2
    assert "404" in res.stderr
    [record] = [json.loads(x) for x in res.stdout.splitlines()]
    assert record["source"] == f"{base}/app.js" and (record["line"], record["column"]) == (1, 20)
