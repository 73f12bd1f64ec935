"""Build assetmon_tui/data/technologies.json from Wappalyzer's MIT-licensed data.

Source: the npm package `wappalyzer` 6.10.47 (license MIT, the last release
before the project changed licence), fetched with the ordinary npm client:

    cd /tmp && npm pack wappalyzer@6.10.47 && tar xzf wappalyzer-6.10.47.tgz
    python bench/trim_technologies.py /tmp/package

Trimmed to what a passive HTTP probe can see (headers, cookies, meta tags,
script src, HTML, inline scripts, URL, certificate issuer); browser-only keys
(js, dom, xhr, css, dns, text) and marketing fields (description, icon,
pricing) are dropped. Same key names and pattern syntax as Wappalyzer's.
"""

from __future__ import annotations

import glob
import json
import os
import sys
from pathlib import Path

PASSIVE = ("headers", "cookies", "meta", "scriptSrc", "html", "scripts", "url", "certIssuer")
KEEP = ("cats", *PASSIVE, "implies", "excludes", "requires", "requiresCategory", "cpe", "website")
OUT = os.path.join(os.path.dirname(__file__), "..", "assetmon_tui", "data", "technologies.json")


def main(package: str) -> None:
    meta = json.loads(Path(os.path.join(package, "package.json")).read_text())
    assert meta["license"] == "MIT", meta["license"]
    techs: dict = {}
    for path in sorted(glob.glob(os.path.join(package, "technologies", "*.json"))):
        techs.update(json.loads(Path(path).read_text()))
    categories = json.loads(Path(os.path.join(package, "categories.json")).read_text())
    kept = {
        name: {k: spec[k] for k in KEEP if k in spec}
        for name, spec in sorted(techs.items())
        if any(k in spec for k in PASSIVE)
    }
    # implied/required names must exist, or implications dangle
    for name, spec in techs.items():
        if name not in kept and any(name in _names(s.get(k)) for s in kept.values() for k in ("implies", "requires")):
            kept[name] = {k: spec[k] for k in KEEP if k in spec}
    used = {str(c) for spec in kept.values() for c in spec.get("cats", [])}
    data = {
        "source": {
            "name": "Wappalyzer technology data (trimmed)",
            "package": f"npm:wappalyzer@{meta['version']}",
            "license": "MIT",
            "copyright": "Copyright (c) Elbert Alias and Wappalyzer contributors",
            "homepage": meta.get("homepage", ""),
        },
        "categories": {
            k: {"name": v["name"]} for k, v in sorted(categories.items(), key=lambda kv: int(kv[0])) if k in used
        },
        "technologies": dict(sorted(kept.items())),
    }
    with open(OUT, "w") as fh:
        json.dump(data, fh, indent=0, sort_keys=False, ensure_ascii=False)
        fh.write("\n")
    print(f"{len(kept)} technologies of {len(techs)} -> {os.path.normpath(OUT)}")


def _names(value) -> list[str]:
    items = value if isinstance(value, list) else [value] if value else []
    return [str(i).split("\\;")[0] for i in items]


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/package")
