"""A small estate written straight into the store, as the pipeline writes it:
tests copy and mutate a `World` between scans, and `fake_scan` persists what
it shows for some modules and ends the scan with a status."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

from assetmon_tui.store import leases, repo
from assetmon_tui.store.db import session
from assetmon_tui.store.models import DnsRecord, Finding, HttpEndpoint, JsFile, Service, utcnow

FAR = (utcnow() + timedelta(days=300)).isoformat()


@dataclass
class World:
    """What a scan sees. Tests copy and mutate it between scans."""

    names: dict = field(
        default_factory=lambda: {
            "www.acme.test": ("ok", [("A", "10.0.0.1")]),
            "api.acme.test": ("ok", [("A", "10.0.0.2"), ("CNAME", "lb.acme.test")]),
            "old.acme.test": ("ok", [("A", "10.0.0.3")]),
        }
    )
    services: dict = field(
        default_factory=lambda: {
            ("10.0.0.1", 80): "http",
            ("10.0.0.1", 443): "https",
            ("10.0.0.2", 22): "ssh",
            ("10.0.0.3", 80): "http",
        }
    )
    http: dict = field(
        default_factory=lambda: {
            "https://www.acme.test/": dict(
                status=200,
                title="Acme",
                tech="nginx",
                content_length=5000,
                tls=json.dumps({"sha256": "aa", "issuer": "R3", "not_after": FAR}),
            ),
            "http://api.acme.test/": dict(status=200, title="API v1"),
        }
    )
    findings: dict = field(
        default_factory=lambda: {
            "fp-aws": dict(
                kind="secret",
                rule="aws_access_key_id",
                severity="high",
                value="AKIAREALSECRETVALUE1",
                redacted="AKIA…LUE1",
                location="https://www.acme.test/main.js",
                line=3,
                host="www.acme.test",
                context='key="AKIAREALSECRETVALUE1"',
            ),
        }
    )
    js: dict = field(default_factory=lambda: {"https://www.acme.test/main.js": "sha-1"})

    def copy(self) -> World:
        return copy.deepcopy(self)


def project_with_targets(name: str = "acme"):
    project = repo.create_project(name)
    repo.add_targets(project.id, ["acme.test", "10.0.0.0/24"])
    return project


def fake_scan(
    project_id: int, world: World, modules=("dns", "ports", "http", "js"), status="done", options: dict | None = None
) -> int:
    """Persist what `world` shows for the given modules, then end the scan with `status`."""
    scan = repo.create_scan(project_id, list(modules), options or {})
    assert leases.claim(scan.id, "thread", "test:1", 60, 3)
    sid = scan.id
    with session() as s:
        host_ids = {}

        def host(name: str, **values) -> int:
            host_ids[name] = repo.upsert_host(s, project_id, name, sid, **values)
            return host_ids[name]

        if "dns" in modules:
            for name, (dns_status, records) in world.names.items():
                hid = host(name, dns_status=dns_status)
                for rtype, value in records:
                    repo.upsert(s, DnsRecord, {"host_id": hid, "rtype": rtype, "value": value}, {"ttl": 60}, sid)
        if "ports" in modules:
            for (address, port), name in world.services.items():
                hid = host(address, is_address=True)
                repo.upsert(s, Service, {"host_id": hid, "port": port}, {"service": name, "banner": ""}, sid)
        if "http" in modules:
            for url, values in world.http.items():
                hid = host(urlsplit(url).hostname)
                repo.upsert(s, HttpEndpoint, {"host_id": hid, "url": url}, values, sid)
        if "js" in modules:
            for url, sha in world.js.items():
                hid = host(urlsplit(url).hostname)
                repo.upsert(s, JsFile, {"host_id": hid, "url": url}, {"sha256": sha, "size": 100}, sid)
            for fingerprint, values in world.findings.items():
                values = dict(values)
                owner = values.pop("host", "")
                hid = host(owner) if owner else None
                repo.upsert(
                    s, Finding, {"project_id": project_id, "fingerprint": fingerprint}, {**values, "host_id": hid}, sid
                )
        s.commit()
    repo.finish_scan(sid, status)
    return sid
