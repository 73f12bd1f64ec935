"""Find JavaScript to fetch: script tags, bundler chunks, source maps.

Pure functions over text: no I/O. The caller fetches what they return.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from urllib.parse import unquote, urljoin, urlsplit

import re2
from selectolax.lexbor import LexborHTMLParser as HTMLParser

_OPTS = re2.Options()
_OPTS.max_mem = 32 << 20

_JS_TYPES = ("", "text/javascript", "application/javascript", "module", "text/ecmascript", "application/ecmascript")
# webpack: {12:"a1b2c3",13:"d4e5f6"}[e]+".chunk.js" (optionally a name map
# before it: "static/js/"+({12:"vendors"}[e]||e)+"."+{...}[e]+".js")
_CHUNK_MAP = re2.compile(
    r"\{((?:\s{0,3}[\"']?[\w\-]{1,64}[\"']?\s{0,3}:\s{0,3}[\"'][\w\-.~]{1,128}"
    r"[\"']\s{0,3},?)+)\}\[(\w{1,8})\]\s{0,3}\+\s{0,3}[\"']([^\"']{0,64}"
    r"\.m?js)[\"']",
    _OPTS,
)
_MAP_ENTRY = re2.compile(r"[\"']?([\w\-]{1,64})[\"']?\s{0,3}:\s{0,3}[\"']([\w\-.~]{1,128})[\"']")
_CHUNK_PREFIX = re2.compile(
    r"[\"']([^\"']{0,200})[\"']\s{0,3}\+\s{0,3}(?:\(\s{0,3}\{([^{}]*)"
    r"\}\[\w{1,8}\]\s{0,3}\|\|\s{0,3}\w{1,8}\s{0,3}\)|\w{1,8})\s{0,3}\+\s{0,3}"
    r"[\"']([^\"']{0,8})[\"']\s{0,3}\+\s{0,3}$"
)
_PUBLIC_PATH = re2.compile(
    r"(?:__webpack_require__|\b[\w$]{1,8})\.p\s{0,3}=\s{0,3}[\"']([^\"']{0,300})"
    r"[\"']",
    _OPTS,
)
_DYNAMIC_IMPORT = re2.compile(r"\bimport\(\s{0,3}[\"'`]([^\"'`\s]{1,500}\.m?js)[\"'`]\s{0,3}\)", _OPTS)
_VITE_DEPS = re2.compile(r"__vite__mapDeps\b[^\[]{0,300}\[([^\]]*)\]", _OPTS)
_ASSET_JS = re2.compile(r"[\"'`]((?:\.{0,2}/)?assets/[\w\-.~/]{1,300}\.m?js)[\"'`]", _OPTS)
_QUOTED = re2.compile(r"[\"']([^\"']{1,500})[\"']")
_SOURCEMAP = re2.compile(r"(?://|/\*)[#@]\s{0,3}sourceMappingURL=([^\s*\"']+)", _OPTS)
_PREFIX_LOOKBACK = 600


def _dedupe(urls: Iterable[str | None]) -> list[str]:
    return list(dict.fromkeys(u for u in urls if u))


def _http(url: str) -> bool:
    return urlsplit(url).scheme in ("http", "https")


def script_urls(html: str, base_url: str) -> list[str]:
    """Absolute URLs of `<script src>` (and module preloads), in page order.
    Honours `<base href>`; skips data:/javascript: and non-JS types."""
    tree = HTMLParser(html)
    base_tag = tree.css_first("base[href]")
    if base_tag is not None:
        base_url = urljoin(base_url, base_tag.attributes.get("href") or "")
    urls = []
    for node in tree.css("script[src], link[rel=modulepreload][href], link[as=script][href]"):
        if node.tag == "script":
            kind = (node.attributes.get("type") or "").strip().lower()
            if kind not in _JS_TYPES:
                continue
            ref = node.attributes.get("src") or ""
        else:
            ref = node.attributes.get("href") or ""
        url = urljoin(base_url, ref.strip())
        if _http(url):
            urls.append(url)
    return _dedupe(urls)


def inline_scripts(html: str) -> list[str]:
    """Bodies of inline `<script>` elements (JSON data blocks included: they
    carry configuration and keys as often as code does)."""
    tree = HTMLParser(html)
    out = []
    for node in tree.css("script"):
        if "src" in node.attributes:
            continue
        body = node.text(deep=True, separator="", strip=False)
        if body.strip():
            out.append(body)
    return out


def _webpack_public_path(public_path: str | None, base_url: str, prefix: str) -> str:
    if public_path not in (None, "", "auto"):
        return urljoin(base_url, public_path)
    # publicPath "auto" or unknown: webpack uses the script's own directory;
    # when that already ends with the chunk prefix, the root is above it.
    directory = urljoin(base_url, ".")
    head = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
    if head and urlsplit(directory).path.endswith("/" + head.lstrip("/")):
        return directory[: len(directory) - len(head.lstrip("/"))]
    return directory


def _webpack_chunks(js_text: str, base_url: str) -> list[str]:
    urls = []
    pp = _PUBLIC_PATH.search(js_text)
    public_path = pp.group(1) if pp else None
    for m in _CHUNK_MAP.finditer(js_text):
        hashes = dict(_MAP_ENTRY.findall(m.group(1)))
        suffix = m.group(3)
        before = js_text[max(0, m.start() - _PREFIX_LOOKBACK) : m.start()]
        pm = _CHUNK_PREFIX.search(before)
        prefix, sep, names = "", "", {}
        if pm:
            prefix, sep = pm.group(1), pm.group(3)
            names = dict(_MAP_ENTRY.findall(pm.group(2) or ""))
        public = _webpack_public_path(public_path, base_url, prefix)
        for chunk_id, digest in hashes.items():
            name = names.get(chunk_id, chunk_id) if pm else ""
            urls.append(urljoin(public, f"{prefix}{name}{sep}{digest}{suffix}"))
    return urls


def _vite_root(base_url: str) -> str:
    """Vite paths ("assets/x-abc.js") are relative to the app base, which is
    the part of the script URL before its "/assets/" directory."""
    path = urlsplit(base_url).path
    cut = path.rfind("/assets/")
    return urljoin(base_url, path[: cut + 1] if cut >= 0 else "/")


def chunk_urls(js_text: str, base_url: str) -> list[str]:
    """URLs of lazily loaded chunks referenced by a bundle: webpack chunk
    maps, dynamic `import()`s, Vite `__vite__mapDeps` and asset paths."""
    urls = _webpack_chunks(js_text, base_url)
    urls += [urljoin(base_url, p) for p in _DYNAMIC_IMPORT.findall(js_text)]
    root = _vite_root(base_url)
    for deps in _VITE_DEPS.findall(js_text):
        urls += [urljoin(root, p) for p in _QUOTED.findall(deps) if p.endswith((".js", ".mjs"))]
    for path in _ASSET_JS.findall(js_text):
        urls.append(urljoin(base_url, path) if path.startswith((".", "/")) else urljoin(root, path))
    return _dedupe(u for u in urls if _http(u))


def sourcemap_url(js_text: str, js_url: str) -> str | None:
    """The last sourceMappingURL comment, resolved against the script URL.
    Inline `data:` maps come back as the data URL itself; decode them with
    `inline_sourcemap`."""
    found = _SOURCEMAP.findall(js_text)
    if not found:
        return None
    ref: str = found[-1].strip()  # re2 has no type information
    return ref if ref.startswith("data:") else urljoin(js_url, ref)


def inline_sourcemap(data_url: str) -> str | None:
    """The JSON text of a `data:application/json[;base64],...` source map."""
    head, sep, payload = data_url.partition(",")
    if not sep or not head.startswith("data:"):
        return None
    if head.endswith(";base64"):
        try:
            return base64.b64decode(payload, validate=False).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return None
    return unquote(payload)


def sourcemap_sources(
    map_json_text: str, *, max_files: int = 2000, max_bytes: int = 50_000_000
) -> list[tuple[str, str]]:
    """(source name, original content) pairs from a source map's
    `sourcesContent` (index maps with `sections` included), stopping at
    `max_files` entries or `max_bytes` of content."""
    try:
        doc = json.loads(map_json_text)
    except ValueError:
        return []
    maps: list[object] = [doc] if isinstance(doc, dict) else []
    if maps and isinstance(doc.get("sections"), list):
        maps += [s.get("map") for s in doc["sections"] if isinstance(s, dict)]
    out: list[tuple[str, str]] = []
    total = 0
    for m in maps:
        if not isinstance(m, dict):
            continue
        names, contents = m.get("sources") or [], m.get("sourcesContent") or []
        if not isinstance(names, list) or not isinstance(contents, list):
            continue
        for name, content in zip(names, contents, strict=False):
            if not isinstance(content, str):
                continue
            if len(out) >= max_files or total + len(content) > max_bytes:
                return out
            total += len(content)
            out.append((str(name), content))
    return out
