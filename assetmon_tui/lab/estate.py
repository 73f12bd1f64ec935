"""The fake company: every DNS name, record, web host, TCP service, planted
secret and CT entry, derived only from (domain, seed, hosts, mutate).

The estate is plain data and the single source of truth: the DNS, web, CT and
TCP servers only read it, and tests read the same object to know what a scanner
should find (`Host.sources` says how each name can be discovered).

Addresses depend on the seed and the name's left part only, so a name keeps
its address across mutation levels and domains. Mutation level N is level N-1
plus a fixed set of changes (see `_mutate`); `diff` compares two estates.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from . import content, ct, fakes
from .content import Plant, VHost

T = TypeVar("T")

COMMON_WORDS = (
    "www",
    "mail",
    "webmail",
    "smtp",
    "pop",
    "imap",
    "ftp",
    "sftp",
    "ssh",
    "mx",
    "mx2",
    "ns1",
    "ns2",
    "api",
    "dev",
    "staging",
    "stage",
    "test",
    "qa",
    "uat",
    "preprod",
    "prod",
    "vpn",
    "admin",
    "portal",
    "cdn",
    "static",
    "assets",
    "img",
    "images",
    "media",
    "files",
    "download",
    "uploads",
    "shop",
    "store",
    "blog",
    "news",
    "forum",
    "community",
    "git",
    "gitlab",
    "jenkins",
    "ci",
    "build",
    "grafana",
    "kibana",
    "prometheus",
    "metrics",
    "logs",
    "sentry",
    "jira",
    "confluence",
    "wiki",
    "docs",
    "help",
    "support",
    "status",
    "app",
    "dashboard",
    "login",
    "sso",
    "auth",
    "id",
    "account",
    "my",
    "intranet",
    "extranet",
    "remote",
    "owa",
    "autodiscover",
    "exchange",
    "m",
    "mobile",
    "beta",
    "demo",
    "sandbox",
    "backup",
    "db",
    "mysql",
    "redis",
    "cache",
    "monitor",
    "nagios",
    "search",
    "crm",
    "erp",
    "hr",
    "careers",
    "jobs",
    "partners",
    "legacy",
    "old",
    "secure",
    "vault",
    "bastion",
    "proxy",
    "gateway",
    "lb",
    "edge",
    "web",
    "cloud",
    "office",
    "chat",
    "meet",
    "promo",
    "marketing",
    "events",
    "analytics",
    "payments",
    "billing",
    "pay",
    "checkout",
    "console",
    "panel",
    "internal",
    "corp",
    "registry",
    "docker",
    "harbor",
    "k8s",
)
NONWEB_WORDS = frozenset(
    {
        "mail",
        "smtp",
        "pop",
        "imap",
        "ftp",
        "sftp",
        "ssh",
        "mx",
        "mx2",
        "ns1",
        "ns2",
        "db",
        "mysql",
        "redis",
        "cache",
        "backup",
        "bastion",
        "lb",
        "edge",
        "proxy",
    }
)

WEB_POOL = tuple(f"127.0.1.{i}" for i in range(1, 9))  # shared web listeners (virtual hosting)
LEGACY_ADDRESS = "127.0.1.250"  # its HTTPS listener presents the self-signed SAN certificate
WILDCARD_ADDRESS = "127.0.2.9"
NS_ADDRESSES = ("127.0.2.53", "127.0.2.54")  # nothing listens here; the lab DNS is in Lab.info
IPV6_WEB = "::1"  # AAAA of the apex and www
DEFAULT_WEB_HOSTS = 150
GENERATED_NONWEB = 100
ENVS = ("prod", "stg", "uat", "qa", "int")
SVCS = (
    "orders",
    "billing",
    "search",
    "auth",
    "media",
    "reports",
    "catalog",
    "payments",
    "notify",
    "ledger",
    "inventory",
    "tracking",
    "pricing",
    "returns",
    "loyalty",
    "shipping",
)
GENERATED_PROFILES = ("java", "express", "laravel", "aspnet", "static", "login")

# Names no wordlist will guess; each is discoverable from one place only.
SAN_ONLY_WEB = {"kx9-internal-billing": ("java", "Billing (internal)"), "zq7-payroll-sso": ("aspnet", "Payroll SSO")}
SAN_ONLY_OTHER = ("ops-vault-3f",)
CT_ONLY_WEB = {"mdm-enroll-eu": ("aspnet", "Device enrollment"), "uat-partner-api-2": ("express", "Partner API (UAT)")}
CT_ONLY_OTHER = ("stg-edge-lb-04",)
CT_STALE = ("old-intranet-2019", "tmp-migration-17")  # logged once, no longer in DNS
HTML_ONLY = "partners-hub-eu"  # linked from www's page
JS_ONLY = "reporting-svc-7"  # referenced from app's JS chunk

# rel name -> (profile, title); "{Org}" is the capitalised first label of the domain.
FIXED_WEB = {
    "": ("wordpress", "{Org} Corp"),
    "www": ("wordpress", "{Org} Corp — Home"),
    "blog": ("wordpress", "{Org} Blog – News from {Org}"),
    "shop": ("laravel", "{Org} Shop"),
    "api": ("express", "{Org} API"),
    "app": ("react", "{Org} App"),
    "portal": ("react", "{Org} Customer Portal"),
    "dev": ("react", "{Org} App (dev)"),
    "staging": ("react", "{Org} App (staging)"),
    "admin": ("login", "{Org} Admin — Sign in"),
    "jenkins": ("jenkins", "Sign in [Jenkins]"),
    "grafana": ("grafana", "Grafana"),
    "git": ("gitlab", "Sign in · GitLab"),
    "vpn": ("login", "{Org} VPN — Sign in"),
    "owa": ("aspnet", "Outlook"),
    "autodiscover": ("iis_default", ""),
    "status": ("static", "{Org} Status"),
    "cdn": ("static", "{Org} CDN"),
    "static": ("static", "{Org} static files"),
    "careers": ("java", "Careers at {Org}"),
    "legacy": ("apache_default", ""),
    "docs": ("static", "{Org} Docs"),
    "assets": ("cloudfront", "{Org} assets"),
    **SAN_ONLY_WEB,
    **CT_ONLY_WEB,
    HTML_ONLY: ("laravel", "{Org} Partner Hub"),
    JS_ONLY: ("express", "Reporting service"),
}
FIXED_OTHER = {
    "mail": "127.0.2.1",
    "bastion": "127.0.2.2",
    "cache": "127.0.2.3",
    "mx2": "127.0.2.4",
    "backup": "127.0.2.5",
    "ns1": NS_ADDRESSES[0],
    "ns2": NS_ADDRESSES[1],
}
HTTPS_ONLY = {"www", "app", "portal", "vpn", "git", "shop"}
LINKS = {
    "www": ["blog", "shop", "careers", "status", "docs", "app", HTML_ONLY],
    "blog": ["www", "shop"],
    "status": ["www", "app", "api"],
}


@dataclass(frozen=True)
class Record:
    rtype: str  # "A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA"
    # MX: (preference, host); SOA: (mname, rname, (serial, refresh, retry, expire, minimum))
    value: str | tuple[Any, ...]
    ttl: int = 300

    @property
    def text(self) -> str:
        """The value of a one-string record (A, AAAA, CNAME, NS, TXT)."""
        assert isinstance(self.value, str), self
        return self.value


@dataclass
class Host:
    """One name inside the zone."""

    name: str
    a: tuple[str, ...] = ()
    aaaa: tuple[str, ...] = ()
    cname: str | None = None  # first hop; the whole chain is in Estate.records
    web: bool = False
    sources: frozenset[str] = frozenset()  # wordlist, ct, san, html, js, dns, apex


@dataclass(frozen=True)
class Service:
    """A non-HTTP TCP listener. `port` is nominal: the lab binds it when it can
    and otherwise a free port (Lab.info["services"] has the real one)."""

    name: str
    address: str
    port: int
    kind: str  # "ssh", "smtp", "redis"
    banner: str


@dataclass(frozen=True)
class Secret:
    kind: str
    value: str
    host: str
    path: str  # URL path of the file that carries it


@dataclass(frozen=True)
class Endpoint:
    value: str  # as written in the JavaScript
    host: str
    path: str


def _hash(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


@dataclass
class _Web:
    profile: str
    title: str
    address: str
    headers: dict[str, str] = field(default_factory=dict)


class Estate:
    def __init__(self, domain: str = "acme.test", seed: int = 1, hosts: int | None = None, mutate: int = 0):
        self.domain = domain.lower().rstrip(".")
        self.seed, self.mutate = seed, mutate
        self.hosts_requested = hosts or DEFAULT_WEB_HOSTS
        self.org = self.domain.split(".")[0].capitalize()
        self._siblings: dict[int, Estate] = {mutate: self}
        # The plan: what exists, before content is rendered.
        self._web: dict[str, _Web] = {}  # rel -> web host
        self._other: dict[str, str] = {}  # rel -> address (no web service)
        self._plants: dict[str, list[Plant]] = {}  # rel -> JS plants
        self._ct: list[tuple[int, tuple[str, ...]]] = []  # (level, names on one certificate)
        self._generated_web: list[str] = []
        self._generated_other: list[str] = []
        self.services: list[Service] = []
        self._base()
        for level in range(1, mutate + 1):
            self._mutate(level)
        self._build()

    # ---- naming helpers -------------------------------------------------
    def fqdn(self, rel: str) -> str:
        return f"{rel}.{self.domain}" if rel else self.domain

    def _web_address(self, rel: str) -> str:
        return WEB_POOL[_hash(self.seed, "web", rel) % len(WEB_POOL)]

    def _other_address(self, rel: str) -> str:
        return f"127.0.2.{16 + _hash(self.seed, 'other', rel) % 224}"

    def _add_web(self, rel: str, profile: str, title: str, address: str | None = None) -> None:
        title = content.DEFAULT_TITLES.get(profile, title).replace("{Org}", self.org)
        self._web[rel] = _Web(profile, title, address or self._web_address(rel))

    def _rng(self, *parts: object) -> random.Random:
        return random.Random("|".join(map(str, (self.seed, *parts))))

    # ---- level 0 ----------------------------------------------------------
    def _base(self) -> None:
        special = {"legacy": LEGACY_ADDRESS, **dict.fromkeys(SAN_ONLY_WEB, LEGACY_ADDRESS)}
        for rel, (profile, title) in FIXED_WEB.items():
            self._add_web(rel, profile, title, special.get(rel))
        self._other.update(FIXED_OTHER)
        for rel in SAN_ONLY_OTHER + CT_ONLY_OTHER:
            self._other[rel] = self._other_address(rel)
        rng = self._rng("words")
        for word in COMMON_WORDS:  # about half of the remaining words exist
            if word in self._web or word in self._other or word == "promo" or rng.random() < 0.5:
                continue
            if word in NONWEB_WORDS:
                self._other[word] = self._other_address(word)
            else:
                self._add_web(word, rng.choice(GENERATED_PROFILES), f"{{Org}} {word.capitalize()}")
        self._generate(rng)
        self._plant_bundles()
        org = self.org.lower()
        self.services = [
            Service(
                self.fqdn("mail"), FIXED_OTHER["mail"], 25, "smtp", f"220 {self.fqdn('mail')} ESMTP Postfix (Ubuntu)"
            ),
            Service(self.fqdn("bastion"), FIXED_OTHER["bastion"], 22, "ssh", "SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13"),
            Service(self.fqdn("cache"), FIXED_OTHER["cache"], 6379, "redis", ""),
        ]
        self.dangling = [{"name": self.fqdn("promo"), "target": f"{org}-old-promo.herokuapp.com", "provider": "heroku"}]
        self.cdn = [
            {"name": self.fqdn("assets"), "target": f"d3k9x7q2m1{org[:4]}.cloudfront.net", "provider": "cloudfront"}
        ]
        self.chain = [self.fqdn("docs"), f"{org}-docs.cdn-provider.test", "edge.cdn-provider.test"]
        self.wildcards = {f"dyn.{self.domain}": WILDCARD_ADDRESS}
        self.san_names = [self.fqdn("legacy")] + [self.fqdn(n) for n in (*SAN_ONLY_WEB, *SAN_ONLY_OTHER)]
        self._base_ct()

    def _generate(self, rng: random.Random) -> None:
        """Scale filler: `{env}-{svc}-{nn}` names, enough web ones to reach `hosts`."""
        web_needed = max(5, self.hosts_requested - len(self._web))
        per_combo = (web_needed + GENERATED_NONWEB) // (len(ENVS) * len(SVCS)) + 2
        names = [f"{e}-{s}-{n:02d}" for e in ENVS for s in SVCS for n in range(1, per_combo + 1)]
        rng.shuffle(names)
        for rel in names[:GENERATED_NONWEB]:
            self._other[rel] = self._other_address(rel)
            self._generated_other.append(rel)
        for rel in names[GENERATED_NONWEB : GENERATED_NONWEB + web_needed]:
            env, svc, _ = rel.split("-")
            self._add_web(rel, rng.choice(GENERATED_PROFILES), f"{{Org}} {svc.capitalize()} ({env}) {rel}")
            self._generated_web.append(rel)

    def _plant_bundles(self) -> None:
        d = self.domain

        def secret(kind: str, make: Callable[[random.Random], T]) -> T:
            """One RNG per secret: adding one never changes the others."""
            return make(self._rng("secret", kind))

        akid, skey = secret("aws", fakes.aws_key_pair)
        self._plants = {
            "app": [
                Plant("aws_access_key_id", akid, "main", f'const AWS_ACCESS_KEY_ID="{akid}";'),
                Plant("aws_secret_access_key", skey, "main", f'const AWS_SECRET_ACCESS_KEY="{skey}";'),
                Plant(
                    "stripe_secret_key",
                    s := secret("stripe", fakes.stripe_live_key),
                    "main",
                    f'const stripe=window.Stripe&&window.Stripe("{s}");',
                ),
                Plant(
                    "endpoint",
                    "/api/v1/users",
                    "main",
                    'function listUsers(){return fetch("/api/v1/users",{credentials:"include"}).then(e=>e.json())}',
                ),
                Plant(
                    "endpoint",
                    "${API}/v2/orders/${id}",
                    "main",
                    "const getOrder=id=>fetch(`${API}/v2/orders/${id}`).then(e=>e.json());",
                ),
                Plant(
                    "endpoint",
                    "/api/v1/auth/login",
                    "main",
                    'const login=b=>fetch("/api/v1/auth/login",{method:"POST",body:JSON.stringify(b)});',
                ),
                Plant("github_pat", g := secret("github", fakes.github_token), "chunk", f'const GH_TOKEN="{g}"'),
                Plant(
                    "endpoint",
                    f"https://api.{d}/graphql",
                    "chunk",
                    f'const GQL="https://api.{d}/graphql";const o=q=>fetch(GQL,{{method:"POST",'
                    'headers:{Authorization:"token "+GH_TOKEN},body:JSON.stringify({query:q})})',
                ),
                Plant(
                    "endpoint",
                    f"https://{JS_ONLY}.{d}/v1/export",
                    "chunk",
                    f'const exportCsv=()=>fetch("https://{JS_ONLY}.{d}/v1/export")',
                ),
                Plant(
                    "google_api_key",
                    k := secret("google", fakes.google_api_key),
                    "map",
                    f'// const MAPS_KEY = "{k}"; // old store locator, remove after migration',
                ),
            ],
            "portal": [
                Plant(
                    "slack_bot_token", t := secret("slack", fakes.slack_bot_token), "main", f'const SLACK_TOKEN="{t}";'
                ),
                Plant(
                    "endpoint",
                    "/api/v1/tickets",
                    "main",
                    'const tickets=()=>fetch("/api/v1/tickets").then(e=>e.json());',
                ),
                Plant("endpoint", f"https://api.{d}/graphql", "chunk", f'const GQL="https://api.{d}/graphql"'),
            ],
            "dev": [Plant("endpoint", "/api/v1/health", "main", 'const health=()=>fetch("/api/v1/health");')],
            "staging": [Plant("endpoint", "/api/v1/health", "main", 'const health=()=>fetch("/api/v1/health");')],
        }

    def _base_ct(self) -> None:
        in_ct = [r for r in self._web if r not in (*SAN_ONLY_WEB, HTML_ONLY, JS_ONLY, "legacy", "", "www")]
        groups = [
            ("*." + self.domain, self.domain),
            ("www." + self.domain, self.domain),
            (f"*.dyn.{self.domain}",),
            (self.fqdn("mail"), self.fqdn("mx2")),
        ]
        generated = sorted(self._generated_web + self._generated_other)
        groups += [(self.fqdn(r),) for r in sorted(in_ct) if r not in generated]
        # promo's certificate outlived the Heroku app it pointed to
        groups += [(self.fqdn(r),) for r in (*CT_ONLY_OTHER, *CT_STALE, "promo")]
        self._rng("ct").shuffle(generated)
        groups += [tuple(self.fqdn(r) for r in generated[i : i + 3]) for i in range(0, len(generated), 3)]
        self._ct = [(0, g) for g in groups]

    # ---- mutations --------------------------------------------------------
    def _mutate(self, level: int) -> None:
        """Level `level` = level-1 plus exactly these changes (see `diff`)."""
        rng = self._rng("mutate", level)
        removed = rng.choice(sorted(self._generated_web))
        self._generated_web.remove(removed)
        del self._web[removed]
        if level == 1:
            new = "beta-checkout"
            self._add_web(new, "laravel", "{Org} Checkout (beta)")
            self._web["www"].title = f"{self.org} Corp — Spring Sale"
            self.services.append(Service(self.fqdn("backup"), FIXED_OTHER["backup"], 22, "ssh", "SSH-2.0-OpenSSH_9.6"))
            sg = fakes.sendgrid_key(self._rng("secret", "sendgrid"))
            self._plants["app"].append(Plant("sendgrid_api_key", sg, "main", f'const SENDGRID_KEY="{sg}";'))
        elif level == 2:
            new = "checkout-v2"
            self._add_web(new, "express", "{Org} Checkout v2")
            self._web["shop"].headers["Server"] = "nginx/1.25.4"
            self.services = [s for s in self.services if s.name != self.fqdn("backup")]
            self._plants["app"] = [p for p in self._plants["app"] if p.kind != "stripe_secret_key"]
        else:
            new = f"rel{level}-preview"
            self._add_web(new, "static", f"{{Org}} preview {level}")
            changed = rng.choice(sorted(self._generated_web))
            self._web[changed].title += f" (rev {level})"
        self._ct.append((level, (self.fqdn(new),)))

    # ---- rendering -------------------------------------------------------
    def _build(self) -> None:
        d = self.domain
        self.vhosts: dict[str, VHost] = {}
        for rel, w in self._web.items():
            plants = self._plants.get(rel, []) if w.profile == "react" else None
            vh = content.build_vhost(
                self.fqdn(rel),
                w.address,
                w.profile,
                w.title,
                d,
                links=[self.fqdn(x) for x in LINKS.get(rel, [])],
                https_only=rel in HTTPS_ONLY,
                plants=plants,
                header_overrides=w.headers,
                canonical=self.fqdn("www") if rel == "" else None,
                seed=self.seed,
            )  # the apex 301s to www
            self.vhosts[vh.name] = vh
        placed = [(vh.name, p, path) for vh in self.vhosts.values() for p, path in vh.placements]
        self.secrets = [Secret(p.kind, p.value, host, path) for host, p, path in placed if p.kind != "endpoint"]
        self.endpoints = [Endpoint(p.value, host, path) for host, p, path in placed if p.kind == "endpoint"]
        for item in self.cdn:  # the CDN also answers on its own name
            self.vhosts[item["target"]] = self.vhosts[item["name"]]
        self.ct_entries = ct.build_entries(self.seed, self._ct)
        self._build_records()
        self._build_hosts()

    def _build_records(self) -> None:
        d, recs = self.domain, {}
        for rel, w in self._web.items():
            recs[self.fqdn(rel)] = [Record("A", w.address)]
        for rel, addr in self._other.items():
            recs[self.fqdn(rel)] = [Record("A", addr)]
        for name in (d, self.fqdn("www")):
            recs[name].append(Record("AAAA", IPV6_WEB))
        # CNAMEs replace the A records the names would otherwise have.
        chain = self.chain
        recs[chain[0]] = [Record("CNAME", chain[1])]
        recs[chain[1]] = [Record("CNAME", chain[2])]
        recs[chain[2]] = [Record("A", self._web["docs"].address)]
        for item in self.cdn:
            recs[item["target"]] = recs[item["name"]]
            recs[item["name"]] = [Record("CNAME", item["target"])]
        for item in self.dangling:  # the target is deliberately absent: NXDOMAIN
            recs[item["name"]] = [Record("CNAME", item["target"])]
        token = fakes.hexdigits(self._rng("txt"), 43)
        recs[d] += [
            Record("NS", self.fqdn("ns1")),
            Record("NS", self.fqdn("ns2")),
            Record("MX", (10, self.fqdn("mail"))),
            Record("MX", (20, self.fqdn("mx2"))),
            Record("TXT", "v=spf1 mx ip4:127.0.2.0/24 -all"),
            Record("TXT", f"google-site-verification={token}"),
            Record("SOA", (self.fqdn("ns1"), f"hostmaster.{d}", (2024011500 + self.mutate, 3600, 600, 1209600, 300))),
        ]
        recs[f"_dmarc.{d}"] = [Record("TXT", f"v=DMARC1; p=quarantine; rua=mailto:dmarc@{d}")]
        recs[f"*.dyn.{d}"] = [Record("A", WILDCARD_ADDRESS)]
        self.records: dict[str, list[Record]] = recs
        # Parents of existing names exist too (NOERROR, no data), per RFC 8020.
        self._parents = {n.split(".", i)[-1] for n in recs for i in range(1, n.count("."))}

    def _build_hosts(self) -> None:
        d = self.domain
        names = {n for n in self.records if (n == d or n.endswith("." + d)) and not n.startswith(("*", "_"))}
        found: dict[str, set[str]] = {n: set() for n in names}
        zone_re = re.compile(r"(?<![\w.-])((?:[a-z0-9-]+\.)+" + re.escape(d) + r")\b")
        for vh in {id(v): v for v in self.vhosts.values()}.values():
            for ctype, body in vh.files.values():
                kind = "html" if ctype.startswith("text/html") else "js"
                for n in zone_re.findall(body.decode("utf-8", "replace")):
                    if n in found and n != vh.name:
                        found[n].add(kind)
        for row in self.ct_entries:
            for n in row["name_value"].split("\n"):
                if n in found:
                    found[n].add("ct")
        for n in self.san_names:
            found[n].add("san")
        for rec in self.records[d]:
            if rec.rtype in ("MX", "NS"):
                found[rec.value[1] if rec.rtype == "MX" else rec.text].add("dns")
        found[d].add("apex")
        self.hosts: dict[str, Host] = {}
        for n in sorted(names):
            rel = n[: -len(d) - 1] if n != d else ""
            recs = self.records[n]
            if rel in COMMON_WORDS:
                found[n].add("wordlist")
            self.hosts[n] = Host(
                n,
                tuple(r.text for r in recs if r.rtype == "A"),
                tuple(r.text for r in recs if r.rtype == "AAAA"),
                next((r.text for r in recs if r.rtype == "CNAME"), None),
                n in self.vhosts,
                frozenset(found[n]),
            )

    # ---- queries ---------------------------------------------------------
    def lookup(self, name: str) -> list[Record] | None:
        """Records for `name` (wildcards applied); [] if it exists without data; None: NXDOMAIN."""
        name = name.lower().rstrip(".")
        if name in self.records:
            return self.records[name]
        for parent in self.wildcards:
            if name.endswith("." + parent):
                return self.records["*." + parent]
        return [] if name in self._parents else None

    def in_zone(self, name: str) -> bool:
        name = name.lower().rstrip(".")
        return name == self.domain or name.endswith("." + self.domain)

    def addresses(self) -> dict[str, str]:
        """In-zone name -> the IPv4 address it resolves to, through CNAME chains
        (dangling names are left out)."""
        out = {}
        for name in self.hosts:
            records = self.lookup(name) or []
            for _ in range(8):
                cname = next((r.text for r in records if r.rtype == "CNAME"), None)
                if cname is None:
                    break
                records = self.lookup(cname) or []
            address = next((r.text for r in records if r.rtype == "A"), None)
            if address:
                out[name] = address
        return out

    @property
    def web_names(self) -> list[str]:
        return sorted(n for n, h in self.hosts.items() if h.web)

    def names_from(self, source: str) -> list[str]:
        return sorted(n for n, h in self.hosts.items() if source in h.sources)

    def only_from(self, source: str) -> list[str]:
        """Names a scanner can learn from `source` and nothing else."""
        return sorted(n for n, h in self.hosts.items() if h.sources == {source})

    @property
    def ct_names(self) -> list[str]:
        return sorted({n for row in self.ct_entries for n in row["name_value"].split("\n")})

    def at(self, level: int) -> Estate:
        """The same estate at another mutation level (cached)."""
        if level not in self._siblings:
            other = Estate(self.domain, self.seed, self.hosts_requested, level)
            other._siblings = self._siblings
            self._siblings[level] = other
        return self._siblings[level]

    def diff(self, a: int, b: int) -> dict[str, list[Any]]:
        return diff(self.at(a), self.at(b))


DIFF_KEYS = (
    "hosts_added",
    "hosts_removed",
    "titles_changed",
    "headers_changed",
    "ports_opened",
    "ports_closed",
    "secrets_added",
    "secrets_removed",
    "endpoints_added",
    "endpoints_removed",
    "ct_names_added",
)


def diff(old: Estate, new: Estate) -> dict[str, list[Any]]:
    """What a scanner should report between two estates. Always every key of DIFF_KEYS."""
    out: dict[str, list[Any]] = {k: [] for k in DIFF_KEYS}
    out["hosts_added"] = sorted(new.hosts.keys() - old.hosts.keys())
    out["hosts_removed"] = sorted(old.hosts.keys() - new.hosts.keys())
    for name in sorted((old.hosts.keys() & new.hosts.keys()) & (old.vhosts.keys() & new.vhosts.keys())):
        o, n = old.vhosts[name], new.vhosts[name]
        if o.title != n.title:
            out["titles_changed"].append({"host": name, "old": o.title, "new": n.title})
        for h in sorted(o.headers.keys() | n.headers.keys()):
            if o.headers.get(h) != n.headers.get(h):
                out["headers_changed"].append(
                    {"host": name, "header": h, "old": o.headers.get(h), "new": n.headers.get(h)}
                )

    def keyed(items: Iterable[Any], key: Callable[[Any], tuple[Any, ...]]) -> dict[tuple[Any, ...], Any]:
        return {key(i): i for i in items}

    for kind, attr, key in (
        ("ports", "services", lambda s: (s.address, s.port)),
        ("secrets", "secrets", lambda s: (s.host, s.kind, s.value)),
        ("endpoints", "endpoints", lambda e: (e.host, e.value)),
    ):
        a, b = keyed(getattr(old, attr), key), keyed(getattr(new, attr), key)
        added, removed = ("ports_opened", "ports_closed") if kind == "ports" else (f"{kind}_added", f"{kind}_removed")
        out[added] = [asdict(b[k]) for k in sorted(b.keys() - a.keys())]
        out[removed] = [asdict(a[k]) for k in sorted(a.keys() - b.keys())]
    out["ct_names_added"] = sorted(set(new.ct_names) - set(old.ct_names))
    return out
