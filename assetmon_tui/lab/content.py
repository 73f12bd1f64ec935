"""What each fake web host serves: headers, HTML, favicon and JS bundles.

A `VHost` is plain data (bytes per path) built once per estate; the web server
only looks things up. Technology markers follow what fingerprinting tools key
on (Server / X-Powered-By headers, cookie names, generator meta tags, asset
paths, favicon bytes). Every link and script points either at a relative path
or at a name inside the lab, so a crawler let loose on the lab never leaves it.
"""

from __future__ import annotations

import hashlib
import html
import json
import random
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from . import fakes


@dataclass(frozen=True)
class Profile:
    server: str
    headers: tuple[tuple[str, str], ...] = ()
    cookies: tuple[str, ...] = ()
    tech: tuple[str, ...] = ()
    favicon: str = "generic"
    login: str | None = None  # "/" redirects here (302) and the page lives here
    head: str = ""  # extra <head> markup
    body: str = ""  # markup before the generic content


_JQUERY = '<script src="/js/jquery-3.7.1.min.js"></script>'
_LOGIN_FORM = (
    '<form method="post" action="{action}"><input name="username" autocomplete="username">'
    '<input type="password" name="password"><button type="submit">Sign in</button></form>'
)

PROFILES: dict[str, Profile] = {
    "wordpress": Profile(
        "Apache/2.4.58 (Ubuntu)",
        (("X-Powered-By", "PHP/8.2.12"),),
        (),
        ("Apache", "PHP", "WordPress", "jQuery"),
        "wordpress",
        head='<meta name="generator" content="WordPress 6.4.2" />\n'
        "<link rel='stylesheet' href='/wp-content/themes/acme/style.css?ver=6.4.2' />\n"
        "<script src='/wp-includes/js/jquery/jquery.min.js?ver=3.7.1'></script>",
        body='<img src="/wp-content/uploads/2024/03/hero.jpg" alt="">',
    ),
    "laravel": Profile(
        "nginx/1.24.0",
        (("X-Powered-By", "PHP/8.2.12"),),
        ("XSRF-TOKEN", "laravel_session"),
        ("Nginx", "PHP", "Laravel", "jQuery"),
        head='<meta name="csrf-token" content="{token}">\n' + _JQUERY,
    ),
    "java": Profile(
        "nginx/1.22.1",
        (),
        ("JSESSIONID",),
        ("Nginx", "Java"),
        body='<a href="/app/index.jsp;jsessionid={token}">Enter</a>',
    ),
    "aspnet": Profile(
        "Microsoft-IIS/10.0",
        (("X-Powered-By", "ASP.NET"), ("X-AspNet-Version", "4.0.30319")),
        ("ASP.NET_SessionId",),
        ("IIS", "ASP.NET"),
        "iis",
        body='<input type="hidden" name="__VIEWSTATE" id="__VIEWSTATE" value="/wEPDwUK{token}" />',
    ),
    "express": Profile(
        "nginx/1.24.0",
        (("X-Powered-By", "Express"),),
        ("connect.sid",),
        ("Nginx", "Express", "Node.js"),
    ),
    "static": Profile(
        "nginx/1.24.0",
        (),
        (),
        ("Nginx", "jQuery", "Bootstrap"),
        head='<link rel="stylesheet" href="/css/bootstrap-5.3.2.min.css">\n' + _JQUERY,
    ),
    "react": Profile(
        "nginx/1.24.0",
        (),
        (),
        ("Nginx", "React", "webpack"),
        "acme",
        body='<noscript>You need to enable JavaScript to run this app.</noscript><div id="root"></div>',
    ),
    "jenkins": Profile(
        "Jetty(10.0.18)",
        (("X-Jenkins", "2.426.1"), ("X-Hudson", "1.395")),
        ("JSESSIONID.3f2a9c1e",),
        ("Jenkins", "Jetty", "Java"),
        "jenkins",
        login="/login",
    ),
    "grafana": Profile(
        "nginx/1.24.0",
        (("X-Frame-Options", "deny"),),
        ("redirect_to",),
        ("Grafana", "Nginx"),
        "grafana",
        login="/login",
        head='<script nonce="">window.grafanaBootData = {"settings":{"buildInfo":{"version":"10.2.3"}}};</script>',
    ),
    "gitlab": Profile(
        "nginx",
        (("X-Gitlab-Meta", '{"correlation_id":"01HQ"}'),),
        ("_gitlab_session",),
        ("GitLab", "Nginx", "Ruby on Rails"),
        "gitlab",
        login="/users/sign_in",
        head='<meta content="GitLab" property="og:site_name">',
    ),
    "login": Profile("nginx/1.24.0", (), ("SESSION",), ("Nginx",), login="/login"),
    "apache_default": Profile("Apache/2.4.58 (Ubuntu)", (), (), ("Apache",)),
    "iis_default": Profile("Microsoft-IIS/10.0", (), (), ("IIS",), "iis"),
    "cloudfront": Profile(
        "AmazonS3",
        (
            ("Via", "1.1 6a1b2c3d4e5f.cloudfront.net (CloudFront)"),
            ("X-Cache", "Hit from cloudfront"),
            ("X-Amz-Cf-Pop", "FRA56-P1"),
        ),
        (),
        ("Amazon CloudFront", "Amazon S3"),
    ),
}

# Fixed titles for default pages (they do not name the host, like the real ones).
DEFAULT_TITLES = {"apache_default": "Apache2 Ubuntu Default Page: It works", "iis_default": "IIS Windows Server"}

_FAVICON_COLOURS = {
    "generic": (90, 90, 90),
    "wordpress": (33, 117, 155),
    "iis": (0, 120, 215),
    "jenkins": (210, 60, 50),
    "grafana": (245, 120, 30),
    "gitlab": (226, 67, 41),
    "acme": (20, 160, 90),
}


def _png(rgb: tuple[int, int, int], size: int = 16) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes(rgb) * size
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(row * size, 9)) + chunk(b"IEND", b"")
    )


def favicon(key: str) -> bytes:
    """A real 16x16 .ico (PNG payload), one colour per product so favicon
    hashes tell products apart the way they do on the internet."""
    png = _png(_FAVICON_COLOURS.get(key, _FAVICON_COLOURS["generic"]))
    header = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(png), 6 + 16)
    return header + entry + png


_STATIC_FILES = {
    "/js/jquery-3.7.1.min.js": (
        "application/javascript",
        b"/*! jQuery v3.7.1 | (c) OpenJS Foundation and other contributors | jquery.org/license */\n"
        b'!function(e,t){"use strict";e.jQuery=e.$=function(){return{}}}(window);\n',
    ),
    "/wp-includes/js/jquery/jquery.min.js": (
        "application/javascript",
        b"/*! jQuery v3.7.1 | (c) OpenJS Foundation */\n",
    ),
    "/css/bootstrap-5.3.2.min.css": (
        "text/css",
        b"/*!\n * Bootstrap  v5.3.2 (https://getbootstrap.com/)\n */:root{--bs-blue:#0d6efd}\n",
    ),
}


@dataclass(frozen=True)
class Plant:
    """Something written into a JS bundle: a secret or an API endpoint.
    `where` is "main", "chunk" or "map" (only in the source map's sourcesContent)."""

    kind: str  # secret kind, or "endpoint"
    value: str
    where: str
    code: str  # the JS line that carries it


@dataclass
class VHost:
    name: str
    address: str
    profile: str
    title: str
    headers: dict[str, str]  # always includes Server
    cookies: tuple[str, ...]
    tech: tuple[str, ...]
    https_only: bool = False  # plain HTTP answers 301 to https
    login: str | None = None  # "/" answers 302 to this path
    canonical: str | None = None  # every request answers 301 to this host (apex -> www)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # path -> (content type, body)
    placements: list[tuple[Plant, str]] = field(default_factory=list)  # (plant, URL path holding it)

    def page_path(self) -> str:
        return (self.login or "/").split("?")[0]


def _page(vh: VHost, prof: Profile, links: list[str], token: str) -> bytes:
    title = html.escape(vh.title)
    head = prof.head.replace("{token}", token)
    body = prof.body.replace("{token}", token)
    if prof.login:
        body += _LOGIN_FORM.format(action=prof.login.split("?")[0])
    nav = "".join(f'<li><a href="https://{h}/">{h}</a></li>' for h in links)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<title>{title}</title>\n<link rel="icon" href="/favicon.ico">\n{head}\n</head>\n'
        f"<body>\n{body}\n<h1>{title}</h1>\n<ul>{nav}</ul>\n"
        "<footer>&copy; 2024 Acme Corp</footer>\n</body></html>\n"
    ).encode()


def _short_hash(data: str) -> str:
    return hashlib.sha256(data.encode()).hexdigest()[:8]


def _bundle(vh: VHost, domain: str, plants: list[Plant], rng: random.Random) -> str:
    """Add a CRA/webpack-style bundle to `vh.files`; return the main script path."""
    chunk_ids = sorted(rng.sample(range(100, 999), 2))
    chunk_lines = [p.code for p in plants if p.where == "chunk"]
    chunks = {}
    for i, cid in enumerate(chunk_ids):
        lines = chunk_lines if i == 0 else ['const o=e=>e.toLocaleString("en-US")']
        js = (
            f'"use strict";(self.webpackChunkacme_app=self.webpackChunkacme_app||[]).push([[{cid}],'
            f"{{{cid * 7}:(e,t,n)=>{{n.d(t,{{Z:()=>o}});" + ";".join(lines) + "}}]);\n"
        )
        chunks[cid] = (_short_hash(js), js)
    chunk_map = "{" + ",".join(f'{c}:"{h}"' for c, (h, _) in chunks.items()) + "}"  # webpack: {473:"bedbe7f0"}
    main_lines = [p.code for p in plants if p.where == "main"]
    main = (
        '(()=>{"use strict";var n={},o={};function r(e){var t=o[e];if(void 0!==t)return t.exports;'
        "var c=o[e]={exports:{}};return n[e](c,c.exports,r),c.exports}"
        f'r.p="/";r.u=e=>"static/js/"+e+"."+{chunk_map}[e]+".chunk.js";'
        "r.e=e=>import(r.p+r.u(e));\n"
        f'const API="https://api.{domain}";\n' + "\n".join(main_lines) + "\n"
        f'document.getElementById("root").textContent={json.dumps(vh.title)};'
        f"Promise.all([{','.join(f'r.e({c})' for c in chunk_ids)}]);\n}})();\n"
    )
    main_hash = _short_hash(main)
    main_path = f"/static/js/main.{main_hash}.js"
    main += f"//# sourceMappingURL=main.{main_hash}.js.map\n"
    # The source map holds readable sources, including lines the minifier dropped.
    config_src = (
        f'// Build-time configuration for {vh.name}\nexport const API = "https://api.{domain}";\n'
        + "\n".join(p.code for p in plants if p.where in ("main", "map"))
        + "\n"
    )
    smap = {
        "version": 3,
        "file": main_path.lstrip("/"),
        "sourceRoot": "",
        "names": [],
        "mappings": ";;AAAA,SAASA",
        "sources": ["webpack://acme-app/./src/config.js", "webpack://acme-app/./src/api/client.js"],
        "sourcesContent": [config_src, "\n".join(chunk_lines) + "\n"],
    }
    js = "application/javascript"
    vh.files[main_path] = (js, main.encode())
    vh.files[main_path + ".map"] = ("application/json", json.dumps(smap, indent=1).encode())
    for cid, (h, body) in chunks.items():
        vh.files[f"/static/js/{cid}.{h}.chunk.js"] = (js, body.encode())
    first_chunk = f"/static/js/{chunk_ids[0]}.{chunks[chunk_ids[0]][0]}.chunk.js"
    where_path = {"main": main_path, "chunk": first_chunk, "map": main_path + ".map"}
    vh.placements = [(p, where_path[p.where]) for p in plants]
    return main_path


def build_vhost(
    name: str,
    address: str,
    profile: str,
    title: str,
    domain: str,
    *,
    links: Sequence[str] = (),
    https_only: bool = False,
    plants: list[Plant] | None = None,
    header_overrides: dict[str, str] | None = None,
    canonical: str | None = None,
    seed: object = "",
) -> VHost:
    prof = PROFILES[profile]
    rng = random.Random(f"vhost:{seed}:{name}")
    headers = {"Server": prof.server, **dict(prof.headers), **(header_overrides or {})}
    vh = VHost(name, address, profile, title, headers, prof.cookies, prof.tech, https_only, prof.login, canonical)
    page = _page(vh, prof, list(links), fakes.hexdigits(rng, 32))
    if plants is not None:  # a single-page app: the page loads the bundle
        main_path = _bundle(vh, domain, plants, rng)
        page = page.replace(
            b'<div id="root"></div>', f'<div id="root"></div><script defer src="{main_path}"></script>'.encode()
        )
    vh.files[vh.page_path()] = ("text/html; charset=utf-8", page)
    vh.files["/favicon.ico"] = ("image/x-icon", favicon(prof.favicon))
    for path, item in _STATIC_FILES.items():
        if path.encode() in page:
            vh.files[path] = item
    return vh
