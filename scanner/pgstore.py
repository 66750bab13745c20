"""The PostgreSQL side of the store: a connection that answers the few calls the store makes of
sqlite-utils (``query``, ``execute``, ``table_names``), the schema as PostgreSQL DDL (the same tables,
columns and migration names as the SQLite store), URL masking and identity locks.

The store's SQL is written once with ``?`` placeholders and in the dialect both engines accept; this
module turns ``?`` into psycopg's ``%s``. Credentials come the way libpq users expect (the URL, PGPASSWORD,
a service file, ~/.pgpass): libpq reads them; camsweep never writes them anywhere, and shows a URL only
through :func:`mask_url`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from scanner.errors import StoreError

URL_SCHEMES = ("postgresql://", "postgres://")
MIGRATION_LOCK = 0x63616D7377656570  # "camsweep": one migrator at a time per database


def is_pg_url(target: object) -> bool:
    """Whether a ``--db`` value names a PostgreSQL store (a ``postgresql://`` URL) rather than a file."""
    return isinstance(target, str) and target.lower().startswith(URL_SCHEMES)


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (userinfo and ``password=`` query pairs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"://[^@/]*@", "://***@", url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    query = parts.query
    if query:
        pairs = [(k, "***" if k.lower() == "password" else v) for k, v in parse_qsl(query, keep_blank_values=True)]
        query = urlencode(pairs, safe="/*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def target_key(url: str) -> str:
    """Where a push went, without any credential: user, host, port, database and service of the URL."""
    parts = urlsplit(url)
    q = {k: v for k, v in parse_qsl(parts.query) if k in ("host", "port", "dbname", "service")}
    host = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    return f"postgresql://{user + '@' if user else ''}{host}{parts.path}" + (f"?{urlencode(sorted(q.items()))}" if q else "")


def lock_key(*parts: object) -> int:
    """A signed 64-bit advisory-lock key for one identity key (serial, MAC, site+IP, parent+channel)."""
    h = hashlib.blake2b("\x1f".join("" if p is None else str(p) for p in parts).encode("utf-8", "replace"),
                        digest_size=8).digest()
    return int.from_bytes(h, "big", signed=True)


_SQL_CACHE: dict[str, str] = {}


def pg_sql(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (the store's SQL has no other ``?`` or ``%``)."""
    out = _SQL_CACHE.get(sql)
    if out is None:
        out = _SQL_CACHE[sql] = sql.replace("%", "%%").replace("?", "%s")
    return out


def _clean(v: Any) -> Any:
    """PostgreSQL text holds no NUL and no lone surrogate (SQLite holds both): such text is stored with
    U+FFFD in their place rather than failing the device."""
    if isinstance(v, str):
        if "\x00" in v:
            v = v.replace("\x00", "\ufffd")
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            v = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in v)
    return v


class PgDatabase:
    """One psycopg connection (autocommit; explicit transactions) with the store's three query calls."""

    def __init__(self, url: str, *, connect_timeout: int = 15) -> None:
        import psycopg
        from psycopg.rows import dict_row

        self.url = url
        try:
            self.conn = psycopg.connect(url, autocommit=True, row_factory=dict_row,
                                        connect_timeout=connect_timeout, application_name="camsweep")
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to the store {mask_url(url)}: {_first_line(exc)}") from None

    def query(self, sql: str, params: Iterable[Any] = ()) -> Iterator[dict[str, Any]]:
        cur = self.conn.execute(pg_sql(sql), [_clean(p) for p in params])
        return iter(cur.fetchall()) if cur.description else iter(())

    def execute(self, sql: str, params: Iterable[Any] = ()) -> Any:
        return self.conn.execute(pg_sql(sql), [_clean(p) for p in params])

    def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(pg_sql(sql), [[_clean(p) for p in r] for r in rows])

    def insert(self, table: str, row: dict[str, Any]) -> int:
        cols = ", ".join(f'"{c}"' for c in row)
        cur = self.conn.execute(f'insert into "{table}" ({cols}) values ({", ".join(["%s"] * len(row))}) '
                                "returning id", [_clean(v) for v in row.values()])
        return int(cur.fetchone()["id"])

    def insert_many(self, sql: str, rows: list[list[Any]]) -> list[int]:
        """One ``insert ... returning id`` per row, pipelined; the ids in order."""
        ids: list[int] = []
        with self.conn.cursor() as cur:
            cur.executemany(pg_sql(sql), [[_clean(p) for p in r] for r in rows], returning=True)
            while True:
                ids.append(int(cur.fetchone()["id"]))
                if not cur.nextset():
                    break
        return ids

    def table_names(self) -> list[str]:
        return [r["tablename"] for r in self.query(
            "select tablename from pg_tables where schemaname = current_schema() order by tablename")]

    def columns(self, table: str) -> list[str]:
        return [r["column_name"] for r in self.query(
            "select column_name from information_schema.columns where table_schema = current_schema() "
            "and table_name = ? order by ordinal_position", [table])]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.conn.transaction():
            yield

    def lock(self, keys: Iterable[int]) -> None:
        """Transaction-scoped advisory locks on identity keys, taken in ascending order (no deadlock
        between writers that each take all their keys at once)."""
        ks = sorted(set(keys))
        if ks:
            self.conn.execute("select count(pg_advisory_xact_lock(k)) from "
                              "(select unnest(%s::bigint[]) as k order by 1) t", [ks])

    def close(self) -> None:
        self.conn.close()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


# --------------------------------------------------------------------------------------------
# the schema as PostgreSQL DDL: one entry per SQLite migration, the same names (append only)

_ID = "bigint generated by default as identity primary key"

PG_MIGRATIONS: dict[str, list[str]] = {
    "001_initial": [
        f"""create table scans (id {_ID}, started_at text, finished_at text, status text, targets text,
            options text, site text, policy text, camsweep_version text, fingerprints_version text,
            device_count bigint, restricted_count bigint, error text)""",
        f"""create table devices (id {_ID}, mac text, serial text, ip text, site text, first_seen text,
            last_seen text, first_scan bigint, last_scan bigint, manufacturer text, brand text, model text,
            firmware text, device_type text, restricted bigint, lists text, confidence double precision,
            parent_id bigint, channel text)""",
        "create index idx_devices_mac on devices (mac)",
        "create index idx_devices_serial on devices (serial)",
        "create index idx_devices_ip on devices (ip)",
        f"""create table observations (id {_ID}, scan_id bigint references scans (id),
            device_id bigint references devices (id), seen_at text, ip text, mac text, record text)""",
        "create index idx_observations_scan_id on observations (scan_id)",
        "create index idx_observations_device_id on observations (device_id)",
        f"""create table identifications (id {_ID}, scan_id bigint references scans (id),
            device_id bigint references devices (id), observation_id bigint, ip text, mac text,
            manufacturer text, brand text, model text, firmware text, serial text, device_type text,
            restricted bigint, lists text, confidence double precision, evidence text, policy text,
            component_risk text, parent_id bigint, channel text)""",
        "create index idx_identifications_scan_id on identifications (scan_id)",
        "create index idx_identifications_device_id on identifications (device_id)",
        "create unique index idx_identifications_scan_id_device_id on identifications (scan_id, device_id)",
        "create table notes (key text primary key, text text, updated_at text)",
        """create table plans (device_id bigint primary key references devices (id), replacement_class text,
            suggested_model text, suggested_maker text, priority bigint, status text, exempt_reason text,
            public_safety bigint, cost_hardware double precision, cost_labour double precision,
            cost_licence double precision, updated_at text)""",
    ],
    "002_identification_review": [
        "alter table identifications add column review text",
        "alter table scans add column review_count bigint",
    ],
    "004_sites": [
        "alter table scans add column uid text",
        "update scans set uid = md5(random()::text || id::text) where uid is null",
        "create unique index idx_scans_uid on scans (uid)",
        "create index idx_scans_site on scans (site)",
        "alter table identifications add column site text",
        "update identifications set site = (select site from scans where scans.id = identifications.scan_id)",
        "create index idx_devices_site_ip on devices (site, ip)",
        "create index idx_identifications_device_id_scan_id on identifications (device_id, scan_id)",
        "create index idx_observations_device_id_scan_id on observations (device_id, scan_id)",
        """create table pushes (scan_uid text not null, target text not null, status text, central_id bigint,
            pushed_at text, primary key (scan_uid, target))""",
    ],
}
