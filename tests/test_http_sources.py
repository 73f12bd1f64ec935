"""HTTP as a source of names: a CSP far longer than a stored header,
robots.txt, a sitemap index and its sitemap, and a script naming an API
host; each name is resolved and probed by the scan, and names out of scope
are left alone."""

from __future__ import annotations

import pytest
from support.loopback import FakeDNS, HttpServer, page
from support.scenario import make_project, run_to_end

from assetmon_tui.core.config import get_settings
from assetmon_tui.dispatch import Dispatcher
from assetmon_tui.store import repo

pytestmark = pytest.mark.one_store
ADDRESS = "127.0.0.8"
PADDING = " ".join(f"https://cdn{n}.partner.example" for n in range(40))  # past the 512 stored characters


@pytest.fixture
def site(monkeypatch):
    monkeypatch.setenv("ASSETMON_BACKEND", "thread")
    get_settings.cache_clear()
    routes = {}
    with HttpServer(routes, host=ADDRESS) as web:
        base = f"http://www.shop.test:{web.port}"
        csp = f"default-src 'self'; script-src {PADDING} https://csp-only.shop.test https://evil.example"
        routes["/"] = page(
            '<html><title>shop</title><script src="/app.js"></script></html>',
            headers={"Content-Security-Policy": csp},
        )
        routes["/app.js"] = page('fetch("https://js-only.shop.test/v1/cart");', content_type="application/javascript")
        routes["/robots.txt"] = page(
            f"User-agent: *\nDisallow: /admin\n# mirror: robots-only.shop.test\nSitemap: {base}/sitemap-index.xml\n",
            content_type="text/plain",
        )
        routes["/sitemap-index.xml"] = page(
            f"<sitemapindex><sitemap><loc>{base}/s1.xml</loc></sitemap></sitemapindex>", content_type="application/xml"
        )
        routes["/s1.xml"] = page(
            "<urlset><url><loc>http://sitemap-only.shop.test/</loc></url>"
            "<url><loc>http://other.example/</loc></url></urlset>",
            content_type="application/xml",
        )
        names = ["www", "csp-only", "js-only", "robots-only", "sitemap-only"]
        zone = {f"{n}.shop.test": {"A": [ADDRESS]} for n in names}
        zone["shop.test"] = {"A": [ADDRESS]}
        with FakeDNS(zone) as dns:
            yield web, dns


def test_names_in_headers_robots_sitemaps_and_scripts_are_resolved_and_probed(site):
    web, dns = site
    project_id = make_project("shop", ["shop.test", "www.shop.test"])
    dispatcher = Dispatcher()
    options = {"nameservers": [dns.address], "ports": str(web.port)}
    row = dispatcher.submit(project_id, ["dns", "ports", "http", "js"], options)
    progress, _ = run_to_end(dispatcher, row.id, timeout=120)
    assert progress.state == "done", progress
    hosts = {h.name for h in repo.hosts(project_id)}
    assert {"csp-only.shop.test", "robots-only.shop.test", "sitemap-only.shop.test", "js-only.shop.test"} <= hosts
    assert not [h for h in hosts if h.endswith(".example")]
    probed = {e.url for e, _ in repo.endpoints(project_id)}
    for name in ("csp-only", "js-only", "sitemap-only"):
        assert f"http://{name}.shop.test:{web.port}/" in probed, probed
    assert not [e for e in probed if "robots.txt" in e or "sitemap" in e.split("/")[-1]]  # site files are no endpoints
    assert not [q for q, _ in dns.queries if q.endswith(".example")]
