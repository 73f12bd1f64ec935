"""The lab's second estate, for discovery breadth (`assetmon lab --estate
breadth`): one name reachable by each technique only, out-of-scope names
offered by every technique, an excluded sub-zone (`!*.secret.breadth.test`)
that every technique points into, and three kinds of wildcard zone (a fixed
answer, random answers, a CNAME). Served by a dict-zone DNS server (UDP, TCP
and a zone transfer), one web server for every vhost, and the fake passive
APIs; `hosts_into_excluded()` tells whether anything was asked about the
excluded zone."""

from __future__ import annotations

import random
from typing import Any

from .passive_fakes import KEYS, PassiveFakes
from .web_server import Request, Response, ThreadedServer
from .zone_dns import ZoneDNS

ROOT = "breadth.test"
EXCLUDED = f"secret.{ROOT}"
ADDRESS = "127.0.3.1"
WORDS = ("www", "nothere", "voip")  # the brute force's list
ONLY = {  # technique -> the one name only it reveals
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
    "passive": f"shodan-scan.{ROOT}",  # planted by the fake Shodan
}
WILDCARDS = ("dyn", "lb", "cn")  # fixed answer, random answers, a CNAME
REFERENCED = tuple(f"voip.{z}.{ROOT}" for z in WILDCARDS)  # real names under them (SRV targets)
SCOPE = (ROOT, f"!*.{EXCLUDED}")  # the project's targets


def zone() -> dict[str, Any]:
    a = {"A": [ADDRESS]}
    records: dict[str, Any] = {
        ROOT: {
            **a,
            "MX": [f"10 {ONLY['mx']}", "20 mx.other.example", f"30 mail.{EXCLUDED}"],
            "NS": [ONLY["ns"], "ns.other.example"],
            "TXT": [f'"v=spf1 a:{ONLY["spf"]} include:_spf.{ROOT} include:_spf.other.example a:relay.{EXCLUDED} -all"'],
        },
        f"_spf.{ROOT}": {"TXT": [f'"v=spf1 a:{ONLY["spf include"]} include:{ROOT} ~all"']},  # and a loop
        f"_dmarc.{ROOT}": {"TXT": [f'"v=DMARC1; p=none; rua=mailto:d@{ONLY["dmarc"]}; ruf=mailto:x@other.example"']},
        f"_sip._tcp.{ROOT}": {"SRV": [f"10 5 5060 {ONLY['srv']}", "10 5 5060 sip.other.example"]},
        f"_xmpp-server._tcp.{ROOT}": {"SRV": [f"0 0 5269 {n}" for n in REFERENCED]},
        f"_ldap._tcp.{ROOT}": {"SRV": [f"0 0 389 ldap.{EXCLUDED}"]},
        f"*.dyn.{ROOT}": a,
        f"*.lb.{ROOT}": lambda name, qtype: {"A": [f"127.0.4.{random.randint(1, 250)}"]},
        f"*.cn.{ROOT}": {"CNAME": [f"edge.{ROOT}"]},
        f"edge.{ROOT}": a,
        ".".join(reversed(ADDRESS.split("."))) + ".in-addr.arpa": {"PTR": [ONLY["ptr"], "host.other.example"]},
        f"*.{EXCLUDED}": a,
    }
    for name in ONLY.values():
        records.setdefault(name, a)
    return records


def pages(port: int) -> dict[str, tuple[str, str, dict[str, str]]]:
    """path -> (content type, body, headers), the same for every vhost."""
    base = f"http://www.{ROOT}:{port}"
    csp = f"default-src 'self'; img-src https://{ONLY['csp']} https://cdn.other.example https://x.{EXCLUDED}"
    script = f'fetch("https://{ONLY["script"]}/v1");fetch("https://api.other.example/");fetch("https://k.{EXCLUDED}/")'
    sitemap = (
        f"<urlset><url><loc>http://{ONLY['sitemap']}/</loc></url><url><loc>http://other.example/</loc></url>"
        f"<url><loc>http://z.{EXCLUDED}/</loc></url></urlset>"
    )
    return {
        "/": (
            "text/html",
            '<html><title>breadth</title><script src="/app.js"></script></html>',
            {"Content-Security-Policy": csp},
        ),
        "/app.js": ("application/javascript", script, {}),
        "/robots.txt": (
            "text/plain",
            f"User-agent: *\n# see {ONLY['robots']}\nSitemap: {base}/sitemap-index.xml\n",
            {},
        ),
        "/sitemap-index.xml": (
            "application/xml",
            f"<sitemapindex><sitemap><loc>{base}/s1.xml</loc></sitemap></sitemapindex>",
            {},
        ),
        "/s1.xml": ("application/xml", sitemap, {}),
    }


class BreadthLab:
    """The breadth estate on loopback; a context manager."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        transfer = [ROOT, ONLY["axfr"], "x.other.example", f"y.{EXCLUDED}"]
        self.dns = ZoneDNS(zone(), host=host, axfr={ROOT: transfer})
        self.hosts: list[str] = []  # the Host header of every web request
        self.web = ThreadedServer(self._page, ADDRESS, name="breadth-web")
        self.passive = PassiveFakes(host)
        self._pages = pages(self.web.port)

    def _page(self, request: Request) -> Response:
        self.hosts.append(request.host)
        page = self._pages.get(request.path)
        if page is None:
            return Response(404, {"Content-Type": "text/plain"}, b"not found")
        content_type, body, headers = page
        return Response(200, {"Content-Type": content_type, **headers}, body.encode())

    def __enter__(self) -> BreadthLab:
        self.dns.__enter__()
        self.web.__enter__()
        self.passive.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.passive.__exit__(*exc)
        self.web.__exit__(*exc)
        self.dns.__exit__(*exc)

    def hosts_into_excluded(self) -> list[str]:
        """Names of the excluded zone anything was asked about, by DNS or HTTP."""
        names = [n for n, _ in self.dns.queries] + self.hosts
        return [n for n in names if n == EXCLUDED or n.endswith("." + EXCLUDED)]

    @property
    def info(self) -> dict[str, Any]:
        """What a scan of it needs: nameserver, web port, targets, wordlist, the fake Shodan."""
        return {
            "estate": "breadth",
            "domain": ROOT,
            "targets": list(SCOPE),
            "nameserver": self.dns.address,
            "http_port": self.web.port,
            "words": list(WORDS),
            "passive": {"shodan": {"url": self.passive.urls()["shodan"], "key": KEYS["shodan"]["valid"]}},
            "only": ONLY,
        }
