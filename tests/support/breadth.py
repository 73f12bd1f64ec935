"""A second estate for discovery breadth: one name reachable by each
technique only, out-of-scope names offered by every technique, an excluded
sub-zone that every technique points into, and three kinds of wildcard
zone. Made of the loopback fakes (FakeDNS with a zone transfer on the same
port, an HTTP server for every vhost, the fake passive APIs)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from dataclasses import dataclass

from .loopback import FakeAXFR, FakeDNS, HttpServer, dns_with_axfr, page

ROOT = "breadth.test"
EXCLUDED = f"secret.{ROOT}"  # the project excludes *.secret.breadth.test
ADDRESS = "127.0.3.1"
WORDS = ["www", "nothere", "voip"]  # the brute force's list
# technique -> the name only it reveals
ONLY = {
    "wordlist": f"www.{ROOT}",
    "mx": f"mx-only.{ROOT}",
    "ns": f"ns-only.{ROOT}",
    "srv": f"sip-only.{ROOT}",
    "spf": f"spf-only.{ROOT}",
    "spf include": f"spf-deep.{ROOT}",
    "dmarc": f"dmarc-only.{ROOT}",
    "axfr": f"axfr-only.{ROOT}",
    "ptr": f"ptr-only.{ROOT}",
    "permutation": f"www2.{ROOT}",
    "csp": f"csp-only.{ROOT}",
    "robots": f"robots-only.{ROOT}",
    "sitemap": f"sitemap-only.{ROOT}",
    "script": f"js-only.{ROOT}",
    "passive": f"shodan-scan.{ROOT}",  # planted by the fake Shodan (lab/passive_fakes.py)
}
WILDCARDS = ("dyn", "lb", "cn")  # fixed answer, random answers, a CNAME
REFERENCED = {f"voip.{z}.{ROOT}" for z in WILDCARDS}  # real names under them (SRV targets)


@dataclass
class Breadth:
    dns: FakeDNS
    xfr: FakeAXFR
    web: HttpServer

    def queries_into_excluded(self) -> list[str]:
        names = [n for n, _ in self.dns.queries]
        hosts = [r.headers.get("host", "").split(":")[0] for r in self.web.requests]
        return [n for n in names + hosts if n == EXCLUDED or n.endswith("." + EXCLUDED)]


def zone() -> dict:
    a = {"A": [ADDRESS]}
    records: dict = {
        ROOT: {
            **a,
            "MX": [f"10 {ONLY['mx']}", "20 mx.other.example", f"30 mail.{EXCLUDED}"],
            "NS": [ONLY["ns"], "ns.other.example"],
            "TXT": [f'"v=spf1 a:{ONLY["spf"]} include:_spf.{ROOT} include:_spf.other.example a:relay.{EXCLUDED} -all"'],
        },
        f"_spf.{ROOT}": {"TXT": [f'"v=spf1 a:{ONLY["spf include"]} include:{ROOT} ~all"']},  # and a loop
        f"_dmarc.{ROOT}": {"TXT": [f'"v=DMARC1; p=none; rua=mailto:d@{ONLY["dmarc"]}; ruf=mailto:x@other.example"']},
        f"_sip._tcp.{ROOT}": {"SRV": [f"10 5 5060 {ONLY['srv']}", "10 5 5060 sip.other.example"]},
        f"_xmpp-server._tcp.{ROOT}": {"SRV": [f"0 0 5269 {n}" for n in sorted(REFERENCED)]},
        f"_ldap._tcp.{ROOT}": {"SRV": [f"0 0 389 ldap.{EXCLUDED}"]},
        f"*.dyn.{ROOT}": a,
        f"*.lb.{ROOT}": lambda name, qtype: {"A": [f"127.0.4.{random.randint(1, 250)}"]},
        f"*.cn.{ROOT}": {"CNAME": [f"edge.{ROOT}"]},
        f"edge.{ROOT}": a,
        ".".join(reversed(ADDRESS.split("."))) + ".in-addr.arpa": {"PTR": [ONLY["ptr"]]},
        f"*.{EXCLUDED}": a,
    }
    for name in ONLY.values():
        records.setdefault(name, a)
    return records


def routes(port: int) -> dict:
    base = f"http://www.{ROOT}:{port}"
    csp = f"default-src 'self'; img-src https://{ONLY['csp']} https://cdn.other.example https://x.{EXCLUDED}"
    return {
        "/": page(
            '<html><title>breadth</title><script src="/app.js"></script></html>',
            headers={"Content-Security-Policy": csp},
        ),
        "/app.js": page(
            f'fetch("https://{ONLY["script"]}/v1");fetch("https://api.other.example/");fetch("https://k.{EXCLUDED}/")',
            content_type="application/javascript",
        ),
        "/robots.txt": page(
            f"User-agent: *\n# see {ONLY['robots']} and www.other.example\nSitemap: {base}/sitemap-index.xml\n",
            content_type="text/plain",
        ),
        "/sitemap-index.xml": page(f"<sitemapindex><sitemap><loc>{base}/s1.xml</loc></sitemap></sitemapindex>"),
        "/s1.xml": page(
            f"<urlset><url><loc>http://{ONLY['sitemap']}/</loc></url><url><loc>http://other.example/</loc></url>"
            f"<url><loc>http://z.{EXCLUDED}/</loc></url></urlset>"
        ),
    }


@contextlib.contextmanager
def breadth() -> Iterator[Breadth]:
    table: dict = {}
    with HttpServer(table, host=ADDRESS) as web:
        table.update(routes(web.port))
        transfer = [ROOT, ONLY["axfr"], "x.other.example", f"y.{EXCLUDED}"]
        dns, xfr = dns_with_axfr(zone(), ROOT, transfer)
        with dns, xfr:
            yield Breadth(dns, xfr, web)
