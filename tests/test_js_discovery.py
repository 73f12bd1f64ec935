"""Script, chunk and source-map discovery."""

from __future__ import annotations

import base64
import json

import pytest

from assetmon_tui.secrets.jsdiscovery import (
    chunk_urls,
    inline_scripts,
    inline_sourcemap,
    script_urls,
    sourcemap_sources,
    sourcemap_url,
)

pytestmark = pytest.mark.one_store  # the store is not what this tests: the SQLite pass is enough

PAGE = """<!doctype html><html><head>
<base href="/app/">
<script src="js/main.js"></script>
<script type="module" src="https://cdn.test/lib.mjs"></script>
<script type="text/template" src="tpl.html"></script>
<script src="data:text/javascript,alert(1)"></script>
<link rel="modulepreload" href="/assets/vendor-abc.js">
<script>window.cfg = {"apiKey": "k"}</script>
<script type="application/json" id="__NEXT_DATA__">{"page": "/"}</script>
<script src="js/main.js"></script>
<!-- <script src="commented.js"></script> -->
</head><body><script src = 'late.js' async></script></body></html>"""


def test_script_urls_resolved_and_deduped():
    assert script_urls(PAGE, "https://site.test/index.html") == [
        "https://site.test/app/js/main.js",
        "https://cdn.test/lib.mjs",
        "https://site.test/assets/vendor-abc.js",
        "https://site.test/app/late.js",
    ]


def test_inline_scripts():
    assert inline_scripts(PAGE) == ['window.cfg = {"apiKey": "k"}', '{"page": "/"}']


def test_webpack5_chunk_map_with_public_path():
    js = '(()=>{var r={};r.p="/";r.u=e=>"static/js/"+e+"."+{27:"a1b2c3d4",412:"e5f6a7b8"}[e]+".chunk.js";})()'
    assert chunk_urls(js, "https://site.test/static/js/main.js") == [
        "https://site.test/static/js/27.a1b2c3d4.chunk.js",
        "https://site.test/static/js/412.e5f6a7b8.chunk.js",
    ]


def test_webpack4_named_chunks_and_cdn_public_path():
    js = (
        'a.p="https://cdn.site.test/";function s(e){return a.p+"static/js/"+({0:"vendors~main"}'
        '[e]||e)+"."+{0:"1f3c9a",5:"0099ff"}[e]+".chunk.js"}'
    )
    assert chunk_urls(js, "https://site.test/static/js/main.js") == [
        "https://cdn.site.test/static/js/vendors~main.1f3c9a.chunk.js",
        "https://cdn.site.test/static/js/5.0099ff.chunk.js",
    ]


def test_vite_map_deps_and_dynamic_import():
    js = (
        'const __vite__mapDeps=(i,m=__vite__mapDeps,d=(m.f||(m.f=["assets/About-Ck1.js",'
        '"assets/About-Bx1.css"])))=>i.map(i=>d[i]);const r=()=>import("./Settings-Zx9.js");'
        'import("https://cdn.test/x.mjs")'
    )
    assert chunk_urls(js, "https://site.test/sub/assets/index-abc.js") == [
        "https://site.test/sub/assets/Settings-Zx9.js",
        "https://cdn.test/x.mjs",
        "https://site.test/sub/assets/About-Ck1.js",
    ]


def test_sourcemaps():
    assert (
        sourcemap_url("x();\n//# sourceMappingURL=main.js.map\n", "https://site.test/js/main.js")
        == "https://site.test/js/main.js.map"
    )
    assert sourcemap_url("x();/*# sourceMappingURL=/maps/m.map */", "https://s.test/a/b.js") == (
        "https://s.test/maps/m.map"
    )
    assert sourcemap_url("x();", "https://s.test/a.js") is None
    doc = {
        "version": 3,
        "sources": ["src/a.ts", "src/b.ts", "src/c.ts"],
        "sourcesContent": ["const k = 1", None, "export {}"],
    }
    text = json.dumps(doc)
    data_url = "data:application/json;base64," + base64.b64encode(text.encode()).decode()
    assert sourcemap_url(f"x();\n//# sourceMappingURL={data_url}", "https://s.test/a.js") == data_url
    assert inline_sourcemap(data_url) == text
    assert sourcemap_sources(text) == [("src/a.ts", "const k = 1"), ("src/c.ts", "export {}")]
    assert sourcemap_sources(text, max_files=1) == [("src/a.ts", "const k = 1")]
    assert sourcemap_sources("not json") == []
    indexed = json.dumps({"version": 3, "sections": [{"offset": {"line": 0, "column": 0}, "map": doc}]})
    assert len(sourcemap_sources(indexed)) == 2
