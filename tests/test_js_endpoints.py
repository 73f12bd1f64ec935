"""Endpoint extraction from JavaScript."""

from __future__ import annotations

import pytest

from assetmon_tui.secrets.endpoints import Endpoint, extract_endpoints

pytestmark = pytest.mark.one_store  # the store is not what this tests: the SQLite pass is enough

BASE = "https://shop.test/static/js/main.js"


def values(js: str, base: str | None = BASE) -> dict[str, str]:
    return {e.value: e.kind for e in extract_endpoints(js, base)}


def test_kinds_and_resolution():
    js = (
        'fetch("https://api.shop.test/v1/cart?x=1");'
        'axios.get("/api/orders/"+id);'
        "const u=`${base}/v2/orders/${order.id}/items`;"
        'q("/graphql");ws=new WebSocket("wss://rt.shop.test/socket");'
    )
    eps = extract_endpoints(js, BASE)
    by_value = {e.value: e for e in eps}
    assert by_value["https://api.shop.test/v1/cart?x=1"].kind == "absolute"
    assert by_value["/api/orders/"] == Endpoint(
        "/api/orders/", "path", 1, js.index("/api/orders/") + 1, "https://shop.test/api/orders/"
    )
    assert by_value["/v2/orders/{id}/items"].kind == "template"
    assert by_value["/v2/orders/{id}/items"].url == "https://shop.test/v2/orders/{id}/items"
    assert by_value["/graphql"].kind == "path"
    assert by_value["wss://rt.shop.test/socket"].kind == "absolute"
    assert [e.value for e in eps] == sorted(by_value, key=lambda v: js.find(v.split("{")[0]))


def test_absolute_template_and_no_base():
    got = extract_endpoints("x=`https://cdn.shop.test/u/${user.name}/avatar`", None)
    assert [(e.value, e.kind, e.url) for e in got] == [
        ("https://cdn.shop.test/u/{name}/avatar", "template", "https://cdn.shop.test/u/{name}/avatar")
    ]
    assert extract_endpoints('a="/v1/me"', None)[0].url is None


def test_noise_is_filtered():
    js = (
        'a="/";b="text/html";c="/node_modules/lodash/index.js";d="/yyyy/mm/dd";'
        'e="http://www.w3.org/2000/svg";f="/img/logo.png";g="//";h="/123/456";'
        'i="application/json";j=`${a}${b}`;k="/{id}";l="http://"+host;m="/*"'
    )
    assert values(js) == {}


def test_dedupe_keeps_first_location_and_counts_lines():
    js = 'a("/api/users");\n\n  b("/api/users");\n  c(`/api/users/${u}`)'
    eps = extract_endpoints(js, BASE)
    assert [(e.value, e.line, e.column) for e in eps] == [("/api/users", 1, 4), ("/api/users/{u}", 4, 6)]


def test_columns_count_characters():
    js = 'const msg="héllo ✓";fetch("/api/users")'
    [ep] = extract_endpoints(js, BASE)
    assert js[ep.column - 1 :].startswith("/api/")
