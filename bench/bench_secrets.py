"""Secret-scanner benchmark: speed and false positives on real minified
libraries, side by side with detect-secrets, then recall on a planted corpus.

    .venv/bin/python -m bench.bench_secrets [--per-rule N]

Packages are fetched with `npm pack` into bench/.cache/ (not committed).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import time
from collections import Counter
from pathlib import Path

from assetmon_tui.secrets import RULES, scan_text
from bench.corpus.make_corpus import plant

HERE = Path(__file__).resolve().parent


CACHE = HERE / ".cache"
# Pinned so figures are comparable between runs: (npm spec, main minified build)
PACKAGES = [
    ("jquery@4.0.0", "dist/jquery.min.js"),
    ("react-dom@18.3.1", "umd/react-dom.production.min.js"),
    ("three@0.160.0", "build/three.min.js"),
    ("d3@7.9.2", "dist/d3.min.js"),
    ("angular@1.8.3", "angular.min.js"),
    ("moment@2.31.0", "min/moment.min.js"),
    ("lodash@4.18.1", "lodash.min.js"),
    ("vue@3.5.45", "dist/vue.global.prod.js"),
    ("bootstrap@5.3.9", "dist/js/bootstrap.min.js"),
    ("chart.js@4.6.1", "dist/chart.umd.js"),
]


def fetch() -> list[Path]:
    """The minified files, downloaded and unpacked once into the cache."""
    tarballs, files = CACHE / "npm", CACHE / "clean"
    tarballs.mkdir(parents=True, exist_ok=True)
    files.mkdir(parents=True, exist_ok=True)
    out = []
    for spec, member in PACKAGES:
        name, version = spec.rsplit("@", 1)
        target = files / f"{name}-{version}-{Path(member).name}"
        if not target.exists():
            tgz = tarballs / f"{name}-{version}.tgz"
            if not tgz.exists():
                subprocess.run(
                    ["npm", "pack", spec, "--silent", "--pack-destination", str(tarballs)],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
            with tarfile.open(tgz) as tar:
                data = tar.extractfile(f"package/{member}").read()
            target.write_bytes(data)
        out.append(target)
    return out


def ours(path: Path) -> tuple[float, float, int]:
    """(first-scan seconds, best of 3 warm seconds, findings). The first scan
    pays for RE2 building DFA states lazily; later scans reuse them."""
    text = path.read_text(encoding="utf-8")
    times = []
    for _ in range(4):
        start = time.perf_counter()
        findings = scan_text(text, str(path))
        times.append(time.perf_counter() - start)
    return times[0], min(times[1:]), len(findings)


def detect_secrets_file(path: Path) -> tuple[float, int]:
    """detect-secrets' own scanner, in process, with its default plugins and
    filters: the same work as `detect-secrets scan` minus process start-up."""
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    with default_settings():
        collection = SecretsCollection()
        start = time.perf_counter()
        collection.scan_file(str(path))
        elapsed = time.perf_counter() - start
    return elapsed, sum(len(s) for _, s in collection.data.items())


def detect_secrets_cli(folder: Path) -> tuple[float, int, Counter]:
    """`detect-secrets scan --all-files` run from inside the folder (inside a
    git checkout it would otherwise skip untracked files)."""
    exe = Path(sys.executable).with_name("detect-secrets")
    start = time.perf_counter()
    res = subprocess.run([str(exe), "scan", "--all-files"], cwd=folder, capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - start
    results = json.loads(res.stdout)["results"]
    per_file = Counter({name: len(items) for name, items in results.items()})
    return elapsed, sum(per_file.values()), per_file


def mbps(size: int, seconds: float) -> float:
    return size / seconds / 1e6 if seconds else float("inf")


def speed(files: list[Path]) -> None:
    print(f"{'file':44} {'KB':>6} {'ours MB/s':>10} {'(1st)':>7} {'found':>6} {'d-s MB/s':>9} {'found':>6}")
    total = Counter()
    for path in files:
        size = path.stat().st_size
        t_cold, t_ours, n_ours = ours(path)
        t_ds, n_ds = detect_secrets_file(path)
        total.update({"size": size, "t_cold": t_cold, "t_ours": t_ours, "n_ours": n_ours, "t_ds": t_ds, "n_ds": n_ds})
        print(
            f"{path.name:44} {size // 1024:6} {mbps(size, t_ours):10.1f} "
            f"{mbps(size, t_cold):7.1f} {n_ours:6} {mbps(size, t_ds):9.2f} {n_ds:6}"
        )
    size = total["size"]
    print(
        f"{'TOTAL':44} {size // 1024:6} {mbps(size, total['t_ours']):10.1f} "
        f"{mbps(size, total['t_cold']):7.1f} {total['n_ours']:6} "
        f"{mbps(size, total['t_ds']):9.2f} {total['n_ds']:6}"
    )
    print(
        f"speed-up over detect-secrets: x{total['t_ds'] / total['t_ours']:.0f} warm, "
        f"x{total['t_ds'] / total['t_cold']:.0f} on first scans"
    )
    t_cli, n_cli, _ = detect_secrets_cli(files[0].parent)
    print(
        f"detect-secrets CLI on the folder: {t_cli:.2f}s wall "
        f"({mbps(total['size'], t_cli):.2f} MB/s incl. start-up), {n_cli} findings"
    )


def recall(files: list[Path], per_rule: int) -> None:
    import random

    out_dir = CACHE / "corpus"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    rng = random.Random(20240601)
    planted_total, hits, misses, wrong_pos = 0, Counter(), Counter(), 0
    extra = Counter()
    elapsed = bare = size = 0.0
    for path in files:
        text, planted = plant(path.read_text(encoding="utf-8"), rng, per_rule)
        (out_dir / path.name).write_text(text, encoding="utf-8")
        start = time.perf_counter()
        findings = scan_text(text, path.name)
        elapsed += time.perf_counter() - start
        start = time.perf_counter()
        scan_text(text, path.name, context_lines=0)
        bare += time.perf_counter() - start
        size += len(text.encode())
        by_secret = {(f.rule_id, f.secret): f for f in findings}
        expected = {(p.rule_id, p.secret) for p in planted}
        for p in planted:
            planted_total += 1
            f = by_secret.get((p.rule_id, p.secret))
            if f is None:
                misses[p.rule_id] += 1
                continue
            hits[p.rule_id] += 1
            wrong_pos += (f.line, f.column) != (p.line, p.column)
        for key in by_secret:
            if key not in expected:
                extra[key[0]] += 1
    found = sum(hits.values())
    print(
        f"\nplanted corpus: {len(RULES)} rules x {per_rule} per file x {len(files)} files = "
        f"{planted_total} secrets, scanned at {mbps(int(size), elapsed):.1f} MB/s "
        f"({mbps(int(size), bare):.1f} MB/s without context lines: ~3 ms per beautified "
        f"window, at most 50 a file)"
    )
    print(f"recall: {found}/{planted_total} = {100 * found / planted_total:.2f}%   wrong line/column: {wrong_pos}")
    for rule in RULES:
        n = hits[rule.id] + misses[rule.id]
        if misses[rule.id]:
            print(f"  missed {rule.id:36} {misses[rule.id]}/{n}")
    if extra:
        print(
            "  findings other than the planted secrets, by rule:",
            dict(extra),
            "(the AWS secret sample carries its access key id)",
        )
    _, n_cli, per_file = detect_secrets_cli(out_dir)
    print(
        f"detect-secrets CLI on the planted corpus: {n_cli} findings "
        f"(in {len(per_file)} of {len(files)} files: proves it scanned them)"
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-rule", type=int, default=2, help="secrets per rule per file")
    args = parser.parse_args()
    files = fetch()
    speed(files)
    recall(files, args.per_rule)
    return 0


if __name__ == "__main__":
    sys.exit(main())
