"""What history costs: store growth and the time to record a scan's snapshot
and events, for a project of N hosts scanned again and again.

    .venv/bin/python -m bench.bench_snapshots [--hosts 1000] [--scans 5] [--change 0.01]

The inventory is written straight into a fresh SQLite store (as the pipeline
writes it): per host a name, an A record, two open ports and a web endpoint.
Scan 1 is the baseline; each later scan changes `--change` of the hosts'
page titles (and a few names come and go). Side by side, per scan:
- versions: the item versions this design stores (what changed);
- full copy: the rows a snapshot copying the whole inventory would store (the
  design before, about 1 MB per scan for 1,000 hosts);
- the time `compute_events` takes (the end of a scan, which a user waits for).
The target: an unchanged rescan stores no item, a 1 % change stores about
1 % of the inventory, and recording stays under a second for 1,000 hosts.
"""

from __future__ import annotations

import argparse
import json
import time

from bench.common import isolated_home, table, verdict


def write_scan(project_id: int, hosts: int, scan_no: int, change: float) -> int:
    from assetmon_tui.store import leases, repo
    from assetmon_tui.store.db import session
    from assetmon_tui.store.models import DnsRecord, HttpEndpoint, Service

    scan = repo.create_scan(project_id, ["dns", "ports", "http"], {"gone_after": 1})
    assert scan.id is not None
    assert leases.claim(scan.id, "thread", "bench:1", 60, 3)
    changed = int(hosts * change) if scan_no > 1 else 0
    with session() as s:
        for n in range(hosts):
            if scan_no > 1 and n < changed // 10 and scan_no % 2 == 0:
                continue  # a few hosts go away every other scan
            name, address = f"h{n}.acme.test", f"10.{n // 65536}.{n // 256 % 256}.{n % 256}"
            hid = repo.upsert_host(s, project_id, name, scan.id, dns_status="ok")
            repo.upsert(s, DnsRecord, {"host_id": hid, "rtype": "A", "value": address}, {"ttl": 60}, scan.id)
            aid = repo.upsert_host(s, project_id, address, scan.id, is_address=True)
            for port in (80, 443):
                repo.upsert(s, Service, {"host_id": aid, "port": port}, {"service": "http"}, scan.id)
            title = f"Host {n}" + (f" rev {scan_no}" if n < changed else "")
            tls = json.dumps({"sha256": f"{n:064x}", "issuer": "R3", "not_after": "2031-01-01T00:00:00+00:00"})
            repo.upsert(
                s,
                HttpEndpoint,
                {"host_id": hid, "url": f"https://{name}/"},
                {"status": 200, "title": title, "server": "nginx", "tech": "nginx", "tls": tls, "content_length": 5000},
                scan.id,
            )
        s.commit()
    repo.finish_scan(scan.id, "done")
    return scan.id


def stored() -> tuple[int, int]:
    """(item version rows, their bytes) in the store now."""
    from sqlalchemy import func
    from sqlmodel import select

    from assetmon_tui.store.db import session
    from assetmon_tui.store.models import SnapshotItem

    with session() as s:
        rows, size = s.exec(
            select(
                func.count(),
                func.coalesce(func.sum(func.length(SnapshotItem.state) + func.length(SnapshotItem.entity) + 48), 0),
            ).select_from(SnapshotItem)
        ).one()
    return int(rows), int(size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--scans", type=int, default=5)
    parser.add_argument("--change", type=float, default=0.01, help="share of hosts changed per scan")
    args = parser.parse_args()

    with isolated_home():
        from assetmon_tui.events import compute_events
        from assetmon_tui.store import repo
        from assetmon_tui.store.db import get_engine
        from assetmon_tui.store.models import create_tables

        create_tables(get_engine())
        project = repo.create_project("bench")
        assert project.id is not None
        repo.add_targets(project.id, ["acme.test", "10.0.0.0/20"])
        rows: list[list[object]] = []
        ok = True
        before_rows, before_bytes = 0, 0
        for n in range(1, args.scans + 1):
            sid = write_scan(project.id, args.hosts, n, args.change)
            started = time.perf_counter()
            events = compute_events(sid)
            took = time.perf_counter() - started
            total_rows, total_bytes = stored()
            new_rows, new_bytes = total_rows - before_rows, total_bytes - before_bytes
            before_rows, before_bytes = total_rows, total_bytes
            full_rows = total_rows_present(project.id)
            full_bytes = int(full_rows * (total_bytes / max(total_rows, 1)))
            rows.append(
                [
                    n,
                    len(events),
                    new_rows,
                    f"{new_bytes / 1024:.0f} KiB",
                    full_rows,
                    f"{full_bytes / 1024:.0f} KiB",
                    f"{took:.2f}",
                ]
            )
            ok = (
                ok
                and took < 1.0 * max(1, args.hosts / 1000)
                and (n == 1 or new_rows <= full_rows * args.change * 5 + 5)
            )
        print(
            table(
                ["scan", "events", "versions", "stored", "full copy", "full copy stored", "record s"],
                rows,
            )
        )
        print(f"hosts {args.hosts}, change {args.change:.0%} per scan: {verdict(ok)}")


def total_rows_present(project_id: int) -> int:
    from assetmon_tui.events import as_of

    _, items = as_of(project_id)
    return sum(1 for _, status in items if status != "gone")


if __name__ == "__main__":
    main()
