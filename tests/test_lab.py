"""The offline lab: its model (Estate) and the servers that serve it on loopback."""

from __future__ import annotations

import contextlib
import html
import json
import re
import signal
import socket
import ssl
import subprocess
import sys

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
import httpx
import pytest
from cryptography import x509

from assetmon_tui.lab import Estate, Lab, fakes
from assetmon_tui.lab.estate import COMMON_WORDS, DIFF_KEYS, WILDCARD_ADDRESS
from assetmon_tui.lab.process import LabProcess

pytestmark = pytest.mark.one_store  # the store is not what this tests: the SQLite pass is enough

D = "acme.test"


@pytest.fixture(scope="module")
def lab():
    with Lab(standard_ports=False) as running:
        yield running


def resolver(info: dict) -> dns.resolver.Resolver:
    host, port = info["nameserver"].rsplit(":", 1)
    r = dns.resolver.Resolver(configure=False)
    r.nameservers, r.port, r.lifetime = [host], int(port), 3
    return r


def get(lab: Lab, name: str, path: str = "/", scheme: str = "http") -> httpx.Response:
    """Fetch like a scanner that resolved `name` through the lab DNS."""
    port = lab.ports[scheme]
    address = lab.info["addresses"][name]
    with httpx.Client(verify=False, timeout=5) as client:
        return client.get(
            f"{scheme}://{address}:{port}{path}", headers={"Host": name}, extensions={"sni_hostname": name}
        )


def title(resp: httpx.Response) -> str:
    return html.unescape(re.search(r"<title>(.*?)</title>", resp.text).group(1))


def peer_cert(address: str, port: int, sni: str) -> x509.Certificate:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection((address, port), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname=sni) as tls:
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def sans(cert: x509.Certificate) -> list[str]:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)


# ---- the model ----------------------------------------------------------------


def test_estate_is_deterministic_and_seeded():
    a, b, c = Estate(), Estate(), Estate(seed=2)
    assert a.records == b.records and a.ct_entries == b.ct_entries and a.secrets == b.secrets
    assert a.secrets != c.secrets
    assert 200 <= len(a.hosts) <= 400
    assert len(Estate(hosts=1000).web_names) == 1000


def test_names_by_discovery_source():
    e = Estate()
    assert e.only_from("san") == sorted(f"{n}.{D}" for n in ("kx9-internal-billing", "zq7-payroll-sso", "ops-vault-3f"))
    assert e.only_from("html") == [f"partners-hub-eu.{D}"]
    assert e.only_from("js") == [f"reporting-svc-7.{D}"]
    assert {f"mdm-enroll-eu.{D}", f"stg-edge-lb-04.{D}"} <= set(e.only_from("ct"))
    for name in e.only_from("san") + e.only_from("ct"):
        assert name.split(".")[0] not in COMMON_WORDS
    stale = f"old-intranet-2019.{D}"
    assert stale in e.ct_names and stale not in e.hosts


def test_fake_secret_shapes():
    kinds = {s.kind: s.value for s in Estate().secrets}
    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", kinds["aws_access_key_id"]) and "EXAMPLE" not in kinds["aws_access_key_id"]
    assert re.fullmatch(r"[A-Za-z0-9/+]{40}", kinds["aws_secret_access_key"])
    assert re.fullmatch(r"sk_live_[0-9A-Za-z]{24}", kinds["stripe_secret_key"])
    assert re.fullmatch(r"xoxb-\d{10,13}-\d{10,13}-[A-Za-z0-9]{24}", kinds["slack_bot_token"])
    assert re.fullmatch(r"AIza[0-9A-Za-z_-]{35}", kinds["google_api_key"])
    assert fakes.github_token_is_valid(kinds["github_pat"])
    assert not fakes.github_token_is_valid(kinds["github_pat"][:-1] + "x")


def test_diff_levels():
    d01 = Estate().diff(0, 1)
    assert set(d01) == set(DIFF_KEYS)
    assert d01["hosts_added"] == [f"beta-checkout.{D}"] and len(d01["hosts_removed"]) == 1
    assert [t["host"] for t in d01["titles_changed"]] == [f"www.{D}"]
    assert [(p["address"], p["port"], p["kind"]) for p in d01["ports_opened"]] == [("127.0.2.5", 22, "ssh")]
    assert [s["kind"] for s in d01["secrets_added"]] == ["sendgrid_api_key"]
    assert d01["ct_names_added"] == [f"beta-checkout.{D}"]
    assert not (d01["headers_changed"] or d01["ports_closed"] or d01["secrets_removed"] or d01["endpoints_added"])
    d12 = Estate().diff(1, 2)
    assert d12["hosts_added"] == [f"checkout-v2.{D}"] and d12["ports_closed"] == d01["ports_opened"]
    assert [(h["host"], h["header"]) for h in d12["headers_changed"]] == [(f"shop.{D}", "Server")]
    assert [s["kind"] for s in d12["secrets_removed"]] == ["stripe_secret_key"]
    assert Estate().diff(2, 3)["hosts_added"] == [f"rel3-preview.{D}"]


# ---- DNS ----------------------------------------------------------------------


def test_dns_records(lab):
    r, e = resolver(lab.info), lab.estate
    assert [a.address for a in r.resolve(f"www.{D}", "A")] == list(e.hosts[f"www.{D}"].a)
    assert [a.address for a in r.resolve(f"www.{D}", "AAAA")] == ["::1"]
    docs = r.resolve(f"docs.{D}", "A")
    assert str(docs.canonical_name).rstrip(".") == "edge.cdn-provider.test"
    chain = [str(rr[0].target).rstrip(".") for rr in docs.response.answer if rr.rdtype == dns.rdatatype.CNAME]
    assert chain == e.chain[1:]
    cdn = e.cdn[0]
    assert r.resolve(cdn["name"], "A").canonical_name.to_text().rstrip(".") == cdn["target"]
    assert {m.exchange.to_text() for m in r.resolve(D, "MX")} == {f"mail.{D}.", f"mx2.{D}."}
    txt = [b"".join(t.strings).decode() for t in r.resolve(D, "TXT")]
    assert any(t.startswith("v=spf1") for t in txt) and any(t.startswith("google-site-verification=") for t in txt)
    assert {n.target.to_text() for n in r.resolve(D, "NS")} == {f"ns1.{D}.", f"ns2.{D}."}
    assert r.resolve(f"_dmarc.{D}", "TXT")
    for label in ("a1b2c3", "x.y.z"):  # wildcard sub-zone
        assert [a.address for a in r.resolve(f"{label}.dyn.{D}", "A")] == [WILDCARD_ADDRESS]
    with pytest.raises(dns.resolver.NoAnswer):  # exists (parent of the wildcard) but has no data
        r.resolve(f"dyn.{D}", "A")


def test_dns_negative_answers(lab):
    r, dangling = resolver(lab.info), lab.estate.dangling[0]
    with pytest.raises(dns.resolver.NXDOMAIN) as exc:
        r.resolve(dangling["name"], "A")
    assert exc.value.canonical_name.to_text().rstrip(".") == dangling["target"]
    for name in (dangling["target"], f"nope.{D}", "example.com"):
        with pytest.raises(dns.resolver.NXDOMAIN):
            r.resolve(name, "A")


def test_dns_over_tcp_and_axfr_refused(lab):
    host, port = lab.info["nameserver"].rsplit(":", 1)
    resp = dns.query.tcp(dns.message.make_query(D, "ANY"), host, port=int(port), timeout=3)
    assert {rr.rdtype for rr in resp.answer} >= {dns.rdatatype.A, dns.rdatatype.MX, dns.rdatatype.SOA}
    resp = dns.query.tcp(dns.message.make_query(D, "AXFR"), host, port=int(port), timeout=3)
    assert resp.rcode() == dns.rcode.REFUSED


# ---- web ----------------------------------------------------------------------


def test_vhosts_titles_headers_and_markers(lab):
    e = lab.estate
    for name in (f"blog.{D}", f"careers.{D}", f"owa.{D}", e.web_names[-1]):
        resp = get(lab, name)
        assert resp.status_code == 200 and title(resp) == e.vhosts[name].title
        assert resp.headers["server"] == e.vhosts[name].headers["Server"]
    blog = get(lab, f"blog.{D}")
    assert 'content="WordPress' in blog.text and "/wp-content/" in blog.text and "jquery" in blog.text
    assert blog.headers["x-powered-by"].startswith("PHP/")
    assert "JSESSIONID" in get(lab, f"careers.{D}").headers["set-cookie"]
    ico = get(lab, f"blog.{D}", "/favicon.ico")
    assert ico.content[:4] == b"\x00\x00\x01\x00" and b"PNG" in ico.content


def test_redirects_and_cdn(lab):
    https = lab.ports["https"]
    www = get(lab, f"www.{D}")
    assert www.status_code == 301 and www.headers["location"] == f"https://www.{D}:{https}/"
    assert get(lab, f"www.{D}", scheme="https").status_code == 200
    apex = get(lab, D)
    assert apex.status_code == 301 and apex.headers["location"].startswith(f"https://www.{D}")
    jenkins = get(lab, f"jenkins.{D}")
    assert jenkins.status_code == 302 and jenkins.headers["location"] == "/login"
    assert get(lab, f"jenkins.{D}", "/login").headers["x-jenkins"]
    cdn = get(lab, f"assets.{D}")  # resolves through the CDN and is served: no takeover
    assert cdn.status_code == 200 and "cloudfront" in cdn.headers["via"].lower()
    with httpx.Client() as client:  # unknown Host on a real listener
        assert client.get(f"http://127.0.1.1:{lab.ports['http']}/", headers={"Host": f"nope.{D}"}).status_code == 404


def test_js_bundles_carry_planted_secrets_and_endpoints(lab):
    e = lab.estate
    page = get(lab, f"app.{D}", scheme="https").text
    main = re.search(r'src="(/static/js/main\.[0-9a-f]{8}\.js)"', page).group(1)
    main_js = get(lab, f"app.{D}", main, "https").text
    assert main_js.rstrip().endswith(f"sourceMappingURL={main.rsplit('/', 1)[1]}.map")
    chunks = re.findall(r'(\d+):"([0-9a-f]{8})"', main_js)
    assert chunks and all(
        get(lab, f"app.{D}", f"/static/js/{n}.{h}.chunk.js", "https").status_code == 200 for n, h in chunks
    )
    smap = get(lab, f"app.{D}", main + ".map", "https").json()
    assert smap["sources"] and len(smap["sourcesContent"]) == len(smap["sources"])
    planted = [s for s in e.secrets if s.host == f"app.{D}"]
    assert {s.kind for s in planted} >= {"aws_access_key_id", "stripe_secret_key", "github_pat", "google_api_key"}
    for item in planted + [p for p in e.endpoints if p.host == f"app.{D}"]:
        assert item.value in get(lab, item.host, item.path, "https").text, item
    google = next(s for s in planted if s.kind == "google_api_key")
    assert google.path.endswith(".map") and google.value not in main_js  # only in the source map
    assert f"https://api.{D}/graphql" in {p.value for p in e.endpoints}


# ---- TLS ----------------------------------------------------------------------


def test_certificates(lab):
    e, port = lab.estate, lab.ports["https"]
    legacy = peer_cert(lab.info["addresses"][f"legacy.{D}"], port, f"legacy.{D}")
    assert legacy.issuer == legacy.subject  # self-signed
    assert set(sans(legacy)) == set(e.san_names)
    r = resolver(lab.info)
    for name in e.only_from("san"):
        assert name in sans(legacy) and r.resolve(name, "A")
    shared = peer_cert("127.0.1.1", port, f"www.{D}")
    assert set(sans(shared)) == {D, f"*.{D}", f"*.dyn.{D}"}
    cdn = e.cdn[0]["target"]  # SNI picks the CDN's own certificate
    assert sans(peer_cert(lab.info["addresses"][f"assets.{D}"], port, cdn)) == ["*." + cdn.split(".", 1)[1]]


# ---- CT -----------------------------------------------------------------------


def test_ct_json(lab):
    e = lab.estate
    rows = httpx.get(lab.info["ct_url"], params={"q": f"%.{D}", "output": "json"}).json()
    assert rows and set(rows[0]) >= {
        "issuer_ca_id",
        "issuer_name",
        "common_name",
        "name_value",
        "id",
        "entry_timestamp",
        "not_before",
        "not_after",
        "serial_number",
    }
    names = {n for row in rows for n in row["name_value"].split("\n")}
    assert f"*.{D}" in names and set(e.only_from("ct")) <= names
    assert not set(e.only_from("san")) & names
    assert len(httpx.get(lab.info["ct_url"], params={"q": D, "output": "json"}).json()) == len(rows)
    dedup = httpx.get(lab.info["ct_url"], params={"q": f"%.{D}", "output": "json", "deduplicate": "Y"}).json()
    assert len(dedup) < len(rows)
    assert httpx.get(lab.info["ct_url"], params={"q": "%.other.test", "output": "json"}).json() == []


# ---- TCP services -------------------------------------------------------------


def banner(address: str, port: int, send: bytes = b"") -> bytes:
    with socket.create_connection((address, port), timeout=3) as s:
        if send:
            s.sendall(send)
        return s.recv(200)


def test_tcp_services(lab):
    by_kind = {s["kind"]: s for s in lab.info["services"]}
    assert banner(by_kind["ssh"]["address"], by_kind["ssh"]["port"]).startswith(b"SSH-2.0-OpenSSH_9.6")
    assert (
        banner(by_kind["smtp"]["address"], by_kind["smtp"]["port"])
        == f"220 mail.{D} ESMTP Postfix (Ubuntu)\r\n".encode()
    )
    assert banner(by_kind["redis"]["address"], by_kind["redis"]["port"], b"*1\r\n$4\r\nPING\r\n") == b"+PONG\r\n"


# ---- mutation on a running lab --------------------------------------------------


def observed(lab: Lab, names: set[str]) -> tuple[set[str], dict[str, str]]:
    """What a scanner sees: names that resolve, and titles of those with a page."""
    r, live, titles = resolver(lab.info), set(), {}
    for name in sorted(names):
        try:
            r.resolve(name, "A")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
        live.add(name)
    with httpx.Client(verify=False, timeout=5) as client:
        for name in sorted(live & set(lab.estate.at(0).web_names) | live & set(lab.estate.at(1).web_names)):
            address = lab.estate.addresses()[name]
            resp = client.get(f"https://{address}:{lab.ports['https']}/", headers={"Host": name})
            if resp.status_code == 200:
                titles[name] = title(resp)
    return live, titles


@pytest.mark.parametrize("kind", [Lab, LabProcess], ids=["in-process", "process"])
def test_set_mutation_matches_diff(kind):
    with kind(standard_ports=False) as lab:
        e0, e1 = lab.estate.at(0), lab.estate.at(1)
        expected = lab.diff(0, 1)
        names = set(e0.hosts) | set(e1.hosts)
        live0, titles0 = observed(lab, names)
        lab.set_mutation(1)
        assert lab.info["mutate"] == 1
        live1, titles1 = observed(lab, names)
        assert sorted(live1 - live0) == expected["hosts_added"]
        assert sorted(live0 - live1) == expected["hosts_removed"]
        changed = [
            {"host": n, "old": titles0[n], "new": titles1[n]}
            for n in sorted(titles0.keys() & titles1.keys())
            if titles0[n] != titles1[n]
        ]
        assert changed == expected["titles_changed"]
        opened = lab.diff(0, 1)["ports_opened"][0]  # bound_port is known once the port is open
        assert banner(opened["address"], opened["bound_port"]) == b"SSH-2.0-OpenSSH_9.6\r\n"
        secret = expected["secrets_added"][0]
        assert secret["value"] in get(lab, secret["host"], secret["path"], "https").text
        lab.set_mutation(2)
        with pytest.raises(OSError):
            banner(opened["address"], opened["bound_port"])
        assert lab.info["mutate"] == 2 and lab.ports["https"] == lab.info["https_port"]


def test_a_lab_process_that_cannot_start_says_so_and_one_that_ran_stops_cleanly():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    taken.listen()
    with taken:
        lab = LabProcess(standard_ports=False)
        lab._args += ["--port-ct", str(port)]  # a port another program holds
        with pytest.raises(RuntimeError, match=rf"printed no info .* \(exit status [1-9]\d*\): .*{port}"):
            lab.start()
    with LabProcess(hosts=5, standard_ports=False) as lab:
        proc = lab._proc
        assert lab.ports["dns"] and lab.set_mutation(0) == lab.info  # already there: nothing to do
        with pytest.raises(ValueError, match="cannot go back"):
            lab.set_mutation(1) and lab.set_mutation(0)
    assert proc is not None and proc.returncode == 0  # stopped by SIGTERM, as a user's Ctrl+C


async def test_async_context_manager():
    async with Lab(hosts=40, standard_ports=False, mutate=1) as lab:
        assert lab.info["mutate"] == 1 and f"beta-checkout.{D}" in lab.info["addresses"]
        async with httpx.AsyncClient() as client:
            resp = await client.get(
                f"http://{lab.info['addresses'][f'api.{D}']}:{lab.ports['http']}/", headers={"Host": f"api.{D}"}
            )
        assert resp.status_code == 200


def test_refuses_non_loopback():
    with pytest.raises(ValueError):
        Lab(host="0.0.0.0")


# ---- the command line -------------------------------------------------------------


@contextlib.contextmanager
def lab_cli(*args: str):
    """`python -m assetmon_tui.lab --json ARGS`: its info, then a TERM must stop it with status 0."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "assetmon_tui.lab", "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield json.loads(proc.stdout.readline())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()


def test_cli_prints_info_and_stops_cleanly():
    with lab_cli("--hosts", "60", "--free-ports") as info:
        assert info["domain"] == D and info["mutate"] == 0 and info["hosts"] >= 60
        assert info["http"][0].startswith("http://") and info["ct_url"].startswith("http://127.0.0.1:")
        answer = resolver(info).resolve(f"www.{D}", "A")
        assert answer[0].address == info["addresses"][f"www.{D}"]


def test_the_breadth_estate_serves_from_the_cli_and_stops_cleanly():
    with lab_cli("--estate", "breadth") as info:
        assert info["estate"] == "breadth" and info["targets"] == ["breadth.test", "!*.secret.breadth.test"]
        answer = resolver(info).resolve(info["only"]["srv"].replace("sip-only", "_sip._tcp"), "SRV")
        assert str(answer[0].target).rstrip(".") == info["only"]["srv"]


def test_latency_delays_dns_and_http_answers():
    import time

    with Lab(hosts=5, standard_ports=False, latency=0.15) as slow:
        assert slow.info["latency_ms"] == 150
        started = time.monotonic()
        answer = resolver(slow.info).resolve(f"www.{D}", "A")
        assert answer[0].address == slow.info["addresses"][f"www.{D}"]
        assert time.monotonic() - started >= 0.15
        started = time.monotonic()
        assert get(slow, f"www.{D}").status_code in (200, 301, 302)
        assert time.monotonic() - started >= 0.15
