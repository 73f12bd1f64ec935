"""Reads for browsing a big inventory (the Results screen): every live asset
row of a project in one query per table, as plain rows (attribute access by
column name, no ORM objects), so a 10,000-asset project reads in tens of
milliseconds and no row ever needs a query of its own."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, select

from .db import session
from .models import DnsRecord, Host, HttpEndpoint, Service

CHILDREN: dict[str, Any] = {"dns": DnsRecord, "service": Service, "http": HttpEndpoint}


def live_rows(project_id: int) -> dict[str, list[Any]]:
    """kind ("host", "dns", "service", "http") -> the project's live rows of that
    table, every column; the children's rows also carry `host_name`."""
    host = Host.__table__  # type: ignore[attr-defined]  # SQLModel tables have one
    out: dict[str, list[Any]] = {}
    with session() as s:
        conn = s.connection()
        out["host"] = list(conn.execute(select(host).where(host.c.project_id == project_id).order_by(host.c.name)))
        for kind, model in CHILDREN.items():
            table = model.__table__
            query = (
                select(table, host.c.name.label("host_name"))
                .join(host, host.c.id == table.c.host_id)
                .where(host.c.project_id == project_id)
                .order_by(host.c.name, table.c.id)
            )
            out[kind] = list(conn.execute(query))
    return out


TAB_KINDS = {"hosts": ("host", "ip"), "dns": ("dns",), "services": ("service",), "http": ("http",)}


def first_items(project_id: int, seq: int, per_tab: int) -> tuple[dict[str, list[Any]], dict[str, int]]:
    """The first `per_tab` present (not gone) item versions of each Results tab
    as of snapshot `seq`, in the tables' natural order (hosts and endpoints by
    entity, records by host then entity, services by host then port), as
    `snapshots.items` rows; and how many present items each tab has."""
    from sqlalchemy import func

    from .models import SnapshotItem
    from .snapshots import ITEM_COLUMNS, _holding

    item = SnapshotItem.__table__  # type: ignore[attr-defined]
    present = and_(_holding(project_id, seq), item.c.status != "gone")
    rows: dict[str, list[Any]] = {}
    with session() as s:
        conn = s.connection()
        # text in code point order, as Python sorts (SQLite's default; PostgreSQL's by its locale otherwise)
        pg = conn.dialect.name == "postgresql"
        entity, host = _binary(item.c.entity, pg), _binary(item.c.host, pg)
        orders: dict[str, tuple[Any, ...]] = {
            "hosts": (entity,),
            "dns": (host, entity),
            "services": (host, func.length(item.c.entity), entity),  # the same length: the port's digits compare
            "http": (entity,),
        }
        for tab, kinds in TAB_KINDS.items():
            query = (
                select(*ITEM_COLUMNS)  # type: ignore[call-overload]  # sqlmodel's select() is typed for at most 4 columns
                .where(present, item.c.kind.in_(kinds))
                .order_by(*orders[tab])
                .limit(per_tab)
            )
            rows[tab] = list(conn.execute(query))
        counts: dict[str, int] = dict(
            conn.execute(select(item.c.kind, func.count()).where(present).group_by(item.c.kind)).all()
        )
    totals = {tab: sum(counts.get(k, 0) for k in kinds) for tab, kinds in TAB_KINDS.items()}
    return rows, totals


def _binary(column: Any, postgresql: bool) -> Any:
    return column.collate("C") if postgresql else column


def live_rows_of(ids: dict[str, list[int]]) -> dict[str, list[Any]]:
    """`live_rows` for some assets only: kind ("host", "dns", "service", "http") -> ids."""
    host = Host.__table__  # type: ignore[attr-defined]
    out: dict[str, list[Any]] = {}
    with session() as s:
        conn = s.connection()
        if ids.get("host"):
            out["host"] = list(conn.execute(select(host).where(host.c.id.in_(ids["host"]))))
        for kind, model in CHILDREN.items():
            if ids.get(kind):
                table = model.__table__
                query = (
                    select(table, host.c.name.label("host_name"))
                    .join(host, host.c.id == table.c.host_id)
                    .where(table.c.id.in_(ids[kind]))
                )
                out[kind] = list(conn.execute(query))
    return out
