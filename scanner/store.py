"""The store: scans, devices, observations, identifications, notes and plans.

Two engines behind one class: SQLite (sqlite-utils), the embedded default, for a path; PostgreSQL
(psycopg 3, scanner.pgstore) for a ``postgresql://`` URL, the central store of many sensors. All SQL lives
here and is written once, in the dialect both accept. Schema changes are named migrations, each applied
once in a transaction and recorded in ``_migrations`` (the PostgreSQL form of each is in scanner.pgstore).
SQLite runs in WAL mode and every device is committed as soon as it is identified, so a scan killed
half-way leaves a readable store holding what it found; its scan row stays ``running`` and is marked
``incomplete`` the next time the store is opened (by the same host, when its process is gone).

Identity across scans (``match_identity``, the one place it is decided): a device is the same device
when its serial matches; failing that, its MAC (unless both carry different serials); failing both, its
IP *at the same site* (only when neither side has a MAC or serial the other contradicts). A camera behind
an NVR's PoE port with neither MAC nor serial is the same NVR's same channel. What a scan saw (IP, site,
maker ...) is kept per scan in ``identifications``, so a later scan never changes an earlier scan's report.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scanner import __version__
from scanner.errors import DeviceWriteError, StoreError
from scanner.evidence import EvidenceRecord, Identification, clean_text, dump_record, parse_record
from scanner.pgstore import MIGRATION_LOCK, PG_MIGRATIONS, PgDatabase, is_pg_url, lock_key, mask_url
from scanner.private import create_private_file, setup_lock


def _import_sqlite_utils() -> Any:
    """sqlite-utils imports numpy and pandas, when installed, only to map their scalar types to column
    types; the store never holds them. They are hidden for that one import (~0.2 s of every command's
    start-up, measured with -X importtime) and stay importable afterwards."""
    hidden = [name for name in ("numpy", "pandas") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import sqlite_utils
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    return sqlite_utils


sqlite_utils = _import_sqlite_utils()


PLAN_STATUSES = ("planned", "ordered", "replaced", "exempt")


def default_target() -> str:
    """The store when none is named: ``$CAMSWEEP_DB`` as it is written (a path or a ``postgresql://`` URL,
    which a Path would mangle), else ``<user data dir>/camsweep/camsweep.db``."""
    env = os.environ.get("CAMSWEEP_DB")
    if env:
        return env
    import platformdirs

    return str(Path(platformdirs.user_data_dir("camsweep")) / "camsweep.db")


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --------------------------------------------------------------------------------------------
# migrations: append only; never edit one that has shipped


def _m001_initial(db: sqlite_utils.Database) -> None:
    db["scans"].create(
        {"id": int, "started_at": str, "finished_at": str, "status": str, "targets": str, "options": str,
         "site": str, "policy": str, "camsweep_version": str, "fingerprints_version": str,
         "device_count": int, "restricted_count": int, "error": str},
        pk="id",
    )
    db["devices"].create(
        {"id": int, "mac": str, "serial": str, "ip": str, "site": str, "first_seen": str, "last_seen": str,
         "first_scan": int, "last_scan": int, "manufacturer": str, "brand": str, "model": str, "firmware": str,
         "device_type": str, "restricted": int, "lists": str, "confidence": float,
         "parent_id": int, "channel": str},
        pk="id",
    )
    db["devices"].create_index(["mac"])
    db["devices"].create_index(["serial"])
    db["devices"].create_index(["ip"])
    db["observations"].create(
        {"id": int, "scan_id": int, "device_id": int, "seen_at": str, "ip": str, "mac": str, "record": str},
        pk="id", foreign_keys=[("scan_id", "scans", "id"), ("device_id", "devices", "id")],
    )
    db["observations"].create_index(["scan_id"])
    db["observations"].create_index(["device_id"])
    db["identifications"].create(
        {"id": int, "scan_id": int, "device_id": int, "observation_id": int, "ip": str, "mac": str,
         "manufacturer": str, "brand": str, "model": str, "firmware": str, "serial": str, "device_type": str,
         "restricted": int, "lists": str, "confidence": float, "evidence": str, "policy": str,
         "component_risk": str, "parent_id": int, "channel": str},
        pk="id", foreign_keys=[("scan_id", "scans", "id"), ("device_id", "devices", "id")],
    )
    db["identifications"].create_index(["scan_id"])
    db["identifications"].create_index(["device_id"])
    db["identifications"].create_index(["scan_id", "device_id"], unique=True)
    db["notes"].create({"key": str, "text": str, "updated_at": str}, pk="key")
    db["plans"].create(
        {"device_id": int, "replacement_class": str, "suggested_model": str, "suggested_maker": str,
         "priority": int, "status": str, "exempt_reason": str, "public_safety": int,
         "cost_hardware": float, "cost_labour": float, "cost_licence": float, "updated_at": str},
        pk="device_id", foreign_keys=[("device_id", "devices", "id")],
    )


def _m002_identification_review(db: sqlite_utils.Database) -> None:
    """"needs review" (issue 12): the suspected maker and why, as JSON, per identification; counted per scan."""
    db["identifications"].add_column("review", str)
    db["scans"].add_column("review_count", int)


def _m004_sites(db: sqlite_utils.Database) -> None:
    """Many sites (issue 15): a scan's natural key ``uid`` (push is idempotent by it), the site each
    identification was seen at (a past scan's report never changes), pushes made, and the indexes of
    identity by (site, IP) and of each device's latest identification. The same SQL as PostgreSQL's but
    for the backfill of ``uid``."""
    for stmt in PG_MIGRATIONS["004_sites"]:
        if stmt.startswith("update scans set uid"):
            stmt = "update scans set uid = lower(hex(randomblob(16))) where uid is null"
        db.execute(stmt)


MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("001_initial", _m001_initial),
    ("002_identification_review", _m002_identification_review),
    ("004_sites", _m004_sites),
]

def _pg_value_errors() -> tuple[type[Exception], ...]:
    """psycopg's errors for one row's values (PostgreSQL refuses text it cannot hold): that device only."""
    try:
        import psycopg
    except ImportError:
        return ()
    return (psycopg.DataError, psycopg.IntegrityError)


PLAN_COLUMNS = ("replacement_class", "suggested_model", "suggested_maker", "priority", "status", "exempt_reason",
                "public_safety", "cost_hardware", "cost_labour", "cost_licence")


def _b(v: bool | None) -> int | None:
    return None if v is None else int(bool(v))


@dataclass(frozen=True, slots=True)
class ScanInfo:
    id: int
    started_at: str
    finished_at: str | None
    status: str
    targets: list[str]
    options: dict[str, Any]
    site: str | None
    policy: str
    camsweep_version: str
    fingerprints_version: str | None
    device_count: int
    restricted_count: int
    review_count: int = 0  # identifications that need review (Identification.review)


class Store:
    """One camsweep database. ``Store(path)``; ``Store(":memory:")`` for tests; ``Store("postgresql://...")``
    for a central PostgreSQL store. ``path`` is what may be shown (a URL's password masked)."""

    def __init__(self, path: str | Path | None = None, *, recover: bool = True) -> None:
        target = str(path) if path is not None else default_target()
        self.pg = is_pg_url(target)
        self._target = target
        self.path = mask_url(target) if self.pg else target
        self._scan_sites: dict[int, str | None] = {}
        self._tx_depth = 0
        if self.pg:
            self.db = PgDatabase(target)
            try:
                self.migrate()
                if recover:
                    self.mark_interrupted_scans()
            except Exception as exc:
                self.db.close()
                if isinstance(exc, StoreError):
                    raise
                raise StoreError(f"cannot open the store {self.path}: {exc}") from None
            return
        try:
            if self.path != ":memory:":
                create_private_file(self.path)  # 0600: it holds serials, MACs and page bodies
            with setup_lock(self.path):  # one process at a time switches a new store to WAL and migrates it
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
                self.db = sqlite_utils.Database(conn)
                self.db.execute("PRAGMA busy_timeout=30000")
                if self.path != ":memory:":
                    self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                self.db.execute("PRAGMA foreign_keys=ON")
                self.migrate()
            if recover:
                self.mark_interrupted_scans()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the store {self.path}: {exc}") from None
        except OSError as exc:
            raise StoreError(f"cannot create the store {self.path}: {exc}") from None

    # -- schema ---------------------------------------------------------------------------
    def reopen(self) -> Store:
        """Another connection to the same store (for another thread), credentials included."""
        return Store(self._target, recover=False)

    @property
    def engine(self) -> str:
        return "postgresql" if self.pg else "sqlite"

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction (SQLite: BEGIN IMMEDIATE, so readers never block it half-way). Nests: an
        inner one joins the outer (a recorder and its channel devices commit together: :meth:`transaction`)."""
        if self._tx_depth:
            yield
            return
        self._tx_depth = 1
        try:
            if self.pg:
                with self.db.transaction():
                    yield
            else:
                with self.db.conn:
                    self.db.execute("BEGIN IMMEDIATE")
                    yield
        finally:
            self._tx_depth = 0

    def _lock_identity(self, keys: Iterable[int]) -> None:
        """PostgreSQL: hold the identity keys of the devices being written until commit, so that two
        sensors writing the same device at once make one device (SQLite's BEGIN IMMEDIATE already does)."""
        if self.pg:
            self.db.lock(keys)

    def migrate(self) -> list[str]:
        """Apply pending migrations under the database's write lock, in one transaction. Returns the
        names applied. Two processes opening a new store at once: the second waits for the lock, then
        finds the migrations done (it reads them again once it holds the lock)."""
        if self.pg:
            return self._migrate_pg()
        if "_migrations" in self.db.table_names() and \
                {r["name"] for r in self.db["_migrations"].rows} >= {name for name, _ in MIGRATIONS}:
            return []
        applied = []
        with self.db.conn:
            self.db.execute("BEGIN IMMEDIATE")  # the write lock, held until the migrations are in
            if "_migrations" not in self.db.table_names():
                self.db["_migrations"].create({"name": str, "applied_at": str}, pk="name")
            done = {r["name"] for r in self.db["_migrations"].rows}
            for name, fn in MIGRATIONS:
                if name in done:
                    continue
                fn(self.db)
                self.db["_migrations"].insert({"name": name, "applied_at": now_iso()})
                applied.append(name)
        return applied

    def _migrate_pg(self) -> list[str]:
        applied: list[str] = []
        with self.db.transaction():
            self.db.execute("select pg_advisory_xact_lock(?)", [MIGRATION_LOCK])  # sensors starting at once
            self.db.execute("create table if not exists _migrations (name text primary key, applied_at text)")
            done = {r["name"] for r in self.db.query("select name from _migrations")}
            for name, _fn in MIGRATIONS:
                if name in done:
                    continue
                if name not in PG_MIGRATIONS:
                    raise StoreError(f"migration {name} has no PostgreSQL form (scanner/pgstore.py)")
                for stmt in PG_MIGRATIONS[name]:
                    self.db.execute(stmt)
                self.db.execute("insert into _migrations (name, applied_at) values (?, ?)", [name, now_iso()])
                applied.append(name)
        return applied

    def table_columns(self, table: str) -> list[str]:
        if self.pg:
            return self.db.columns(table)
        return [c.name for c in self.db[table].columns]

    def schema_version(self) -> str:
        rows = list(self.db.query("select name from _migrations order by name desc limit 1"))
        return rows[0]["name"] if rows else ""

    def close(self) -> None:
        if self.pg:
            self.db.close()
        else:
            self.db.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """Writes made inside commit together or not at all (a recorder and its channel devices: a scan
        killed between them leaves neither, so ``--resume`` redoes the recorder whole). Nests: an inner
        one joins the outer."""
        return self._write()

    # -- scans ----------------------------------------------------------------------------
    def start_scan(self, targets: list[str], *, options: dict[str, Any] | None = None, site: str | None = None,
                   policy: str = "ndaa889", fingerprints_version: str | None = None) -> int:
        """A new scan row (status ``running``). ``options`` must not hold credentials."""
        opts = dict(options or {})
        if "_pid" in opts:
            opts.setdefault("_host", socket.gethostname())  # a central store holds other hosts' pids
        with self._write():
            return self._insert("scans", {
                "started_at": now_iso(), "finished_at": None, "status": "running",
                "targets": json.dumps(list(targets)), "options": json.dumps(opts, default=str),
                "site": site, "policy": policy, "camsweep_version": __version__,
                "fingerprints_version": fingerprints_version, "device_count": 0, "restricted_count": 0,
                "review_count": 0, "error": None, "uid": uuid.uuid4().hex,
            })

    def _update(self, table: str, key: int, fields: dict[str, Any], pk: str = "id") -> None:
        sets = ", ".join(f'"{c}" = ?' for c in fields)
        self.db.execute(f'update "{table}" set {sets} where "{pk}" = ?', [*fields.values(), key])

    def finish_scan(self, scan_id: int, status: str = "complete", error: str | None = None, *,
                    if_running: bool = False) -> bool:
        """Set a scan's end, status and counts. The counts are read by the same statement that writes them;
        ``if_running``: only a scan still ``running`` (another process's scan found interrupted, which may
        have finished since it was listed). Returns whether the scan row was written."""
        counts = ", ".join(f"{col} = (select count({what}) from identifications i where i.scan_id = scans.id)"
                           for col, what in (("device_count", "*"), ("review_count", "review"),
                                             ("restricted_count", "case when restricted = 1 then 1 end")))
        with self._write():
            cur = self.db.execute(f"update scans set finished_at = ?, status = ?, error = ?, {counts} where id = ?"
                                  + (" and status = 'running'" if if_running else ""),
                                  [now_iso(), status, error, scan_id])
            return bool(cur.rowcount)

    def set_fingerprints_version(self, scan_id: int, version: str | None) -> None:
        """Record the fingerprint database a scan used (known once it has loaded)."""
        with self._write():
            self._update("scans", scan_id, {"fingerprints_version": version})

    def reopen_scan(self, scan_id: int, *, pid: int | None = None) -> None:
        """Set an incomplete scan running again (``--resume``), owned by ``pid``."""
        info = self.scan(scan_id)
        opts = dict(info.options)
        if pid is not None:
            opts["_pid"] = pid
        if pid is not None:
            opts["_host"] = socket.gethostname()
        with self._write():
            self._update("scans", scan_id, {"status": "running", "finished_at": None, "error": None,
                                            "options": json.dumps(opts, default=str)})

    def identified_ips(self, scan_id: int) -> set[str]:
        """Addresses that already have an identification in a scan (children of NVRs excluded)."""
        return {r["ip"] for r in self.db.query(
            "select ip from identifications where scan_id = ? and ip is not null and parent_id is null",
            [scan_id])}

    def mark_interrupted_scans(self) -> int:
        """Scans left ``running`` by a process that is gone are marked ``incomplete``."""
        rows = list(self.db.query("select id, options from scans where status = 'running'"))
        n = 0
        here = socket.gethostname()
        for r in rows:
            opts = json.loads(r["options"] or "{}")
            pid, host = opts.get("_pid"), opts.get("_host")
            if host and host != here:
                continue  # another sensor's scan: only its own host can tell whether it still runs
            if pid and pid_alive(int(pid)):
                continue
            n += self.finish_scan(r["id"], status="incomplete", error="the scan stopped before it finished",
                                  if_running=True)
        return n

    def scan(self, scan_id: int) -> ScanInfo:
        rows = list(self.db.query("select * from scans where id = ?", [scan_id]))
        if not rows:
            raise StoreError(f"no scan with id {scan_id} in {self.path}")
        return _scan_info(rows[0])

    def scans(self, site: str | None = None, since: str | None = None) -> list[ScanInfo]:
        where, params = [], []
        if site:
            where.append("site = ?")
            params.append(site)
        if since:
            where.append("started_at >= ?")
            params.append(since)
        sql = "select * from scans" + (" where " + " and ".join(where) if where else "") + " order by id"
        return [_scan_info(r) for r in self.db.query(sql, params)]

    def latest_scan_id(self, site: str | None = None, *, complete_only: bool = False) -> int | None:
        where, params = [], []
        if site:
            where.append("site = ?")
            params.append(site)
        if complete_only:
            where.append("status = 'complete'")
        sql = "select max(id) as id from scans" + (" where " + " and ".join(where) if where else "")
        return next(self.db.query(sql, params))["id"]

    def scan_uid(self, scan_id: int) -> str | None:
        r = list(self.db.query("select uid from scans where id = ?", [scan_id]))
        return r[0]["uid"] if r else None

    def latest_scans_by_site(self, *, complete_only: bool = False) -> list[ScanInfo]:
        """The latest scan of every site (scans without a site count as one site), oldest first."""
        cond = " where status = 'complete'" if complete_only else ""
        sql = (f"select * from scans where id in (select max(id) from scans{cond} "
               "group by coalesce(site, '')) order by id")
        return [_scan_info(r) for r in self.db.query(sql)]

    def sites(self) -> list[str | None]:
        return [r["site"] for r in self.db.query(
            "select distinct site from scans order by coalesce(site, '')")]

    # -- devices --------------------------------------------------------------------------
    _IDENTITY_COLS = "id, mac, serial, ip, site, parent_id, first_seen, last_seen"

    def find_device(self, mac: str | None, serial: str | None, ip: str | None, *,
                    site: str | None = None) -> int | None:
        """The stored device these keys name: serial, then MAC, then (site, IP) (see match_identity)."""
        where, params = [], []
        if serial:
            where.append("serial = ?")
            params.append(serial)
        if mac:
            where.append("mac = ?")
            params.append(mac)
        if ip:
            where.append("(ip = ? and coalesce(site, '') = ?)")
            params += [ip, site or ""]
        if not where:
            return None
        cands = list(self.db.query(f"select {self._IDENTITY_COLS} from devices where {' or '.join(where)}",
                                   params))
        return match_identity(cands, mac, serial, ip, site)

    @staticmethod
    def identity_keys(mac: str | None, serial: str | None, ip: str | None, site: str | None,
                      parent_id: int | None = None, channel: str | None = None) -> list[int]:
        """The advisory-lock keys of one device's identity (PostgreSQL writers take them first)."""
        keys = []
        if serial:
            keys.append(lock_key("serial", serial))
        if mac:
            keys.append(lock_key("mac", mac))
        if ip and parent_id is None:
            keys.append(lock_key("ip", site or "", ip))
        if parent_id is not None and channel:
            keys.append(lock_key("channel", parent_id, channel))
        return keys

    def resolve_device(self, mac: str | None, serial: str | None, ip: str | None, site: str | None,
                       parent_id: int | None = None, channel: str | None = None) -> int | None:
        """One answer to "which stored device is this?", for a scan and for a push alike."""
        dev_id = self.find_device(mac, serial, ip if parent_id is None else None, site=site)
        if dev_id is None and parent_id is not None and channel:
            # a camera behind an NVR with no MAC or serial of its own: the same NVR's same channel
            r = list(self.db.query("select id from devices where parent_id = ? and channel = ? "
                                   "order by id limit 1", [parent_id, channel]))
            dev_id = r[0]["id"] if r else None
        return dev_id

    def _insert(self, table: str, row: dict[str, Any]) -> int:
        """One row by plain SQL (the scan's hot path: sqlite-utils' insert() costs ~0.3 ms of table
        introspection a call, three calls a device); returns its id. Values are already SQL types."""
        if self.pg:
            return self.db.insert(table, row)
        cols = ", ".join(f'"{c}"' for c in row)
        cur = self.db.conn.execute(f'insert into "{table}" ({cols}) values ({", ".join("?" * len(row))})',
                                   list(row.values()))
        return int(cur.lastrowid)  # type: ignore[arg-type]

    def _site_of_scan(self, scan_id: int) -> str | None:
        if scan_id not in self._scan_sites:
            r = list(self.db.query("select site from scans where id = ?", [scan_id]))
            self._scan_sites[scan_id] = r[0]["site"] if r else None
        return self._scan_sites[scan_id]

    def _write_device(self, scan_id: int, *, mac: str | None, serial: str | None, ip: str | None,
                      site: str | None, seen_at: str, fields: dict[str, Any], parent_id: int | None,
                      channel: str | None) -> int:
        """Find or create the device (inside a write transaction) and bring its current state up to date
        when this sighting is its newest. Returns the device id."""
        dev_id = self.resolve_device(mac, serial, ip, site, parent_id, channel)
        current = {**fields, "ip": ip, "last_seen": seen_at, "last_scan": scan_id, "parent_id": parent_id,
                   "channel": channel}
        if dev_id is None:
            return self._insert("devices", {**current, "mac": mac, "serial": serial, "site": site,
                                            "first_seen": seen_at, "first_scan": scan_id})
        r = next(self.db.query("select first_seen, last_seen from devices where id = ?", [dev_id]))
        upd = device_update(r, current, mac=mac, serial=serial, site=site, seen_at=seen_at, scan_id=scan_id)
        if upd:
            self._update("devices", dev_id, upd)
        return dev_id

    def record_device(self, scan_id: int, record: EvidenceRecord, ident: Identification, *,
                      policy: str = "ndaa889", site: str | None = None, parent_id: int | None = None,
                      channel: str | None = None) -> int:
        """Write one identified device of a scan and commit at once. Returns the device id.

        Called again for the same device in the same scan (say, more evidence arrived), it replaces
        that scan's identification and adds the observation. A value of this device the database refuses
        raises :class:`DeviceWriteError` (nothing of it written; the scan can go on); a store that fails
        as a whole (disk full, locked) raises sqlite3's error.
        """
        try:
            return self._record_device(scan_id, record, ident, policy=policy, site=site, parent_id=parent_id,
                                       channel=channel)
        except (UnicodeError, OverflowError, ValueError, TypeError, sqlite3.IntegrityError, sqlite3.InterfaceError,
                sqlite3.DataError, *_pg_value_errors()) as exc:  # this device's values, not the store: the transaction rolled back
            raise DeviceWriteError(f"device {record.ip or record.mac or '?'} not stored: "
                                   f"{type(exc).__name__}: {clean_text(str(exc)[:200])}") from exc

    def _record_device(self, scan_id: int, record: EvidenceRecord, ident: Identification, *, policy: str,
                       site: str | None, parent_id: int | None, channel: str | None) -> int:
        now = now_iso()
        serial = ident.serial or (record.onvif.serial if record.onvif and record.onvif.serial else None)
        if site is None:
            site = self._site_of_scan(scan_id)
        fields = {
            "manufacturer": ident.manufacturer, "brand": ident.brand, "model": ident.model,
            "firmware": ident.firmware, "device_type": ident.device_type, "restricted": _b(ident.restricted),
            "lists": json.dumps(list(ident.lists)), "confidence": ident.confidence,
        }
        with self._write():
            self._lock_identity(self.identity_keys(record.mac, serial, record.ip, site, parent_id, channel))
            dev_id = self._write_device(scan_id, mac=record.mac, serial=serial, ip=record.ip, site=site,
                                        seen_at=now, fields=fields, parent_id=parent_id, channel=channel)
            obs_id = self._insert("observations", {"scan_id": scan_id, "device_id": dev_id, "seen_at": now,
                                                   "ip": record.ip, "mac": record.mac,
                                                   "record": dump_record(record)})
            self.db.execute("delete from identifications where scan_id = ? and device_id = ?", [scan_id, dev_id])
            self._insert("identifications", {
                "scan_id": scan_id, "device_id": dev_id, "observation_id": obs_id, "ip": record.ip,
                "mac": record.mac, "manufacturer": ident.manufacturer, "brand": ident.brand,
                "model": ident.model, "firmware": ident.firmware, "serial": serial,
                "device_type": ident.device_type, "restricted": _b(ident.restricted),
                "lists": json.dumps(list(ident.lists)), "confidence": ident.confidence,
                "evidence": json.dumps([e.to_dict() for e in ident.evidence]), "policy": policy,
                "component_risk": json.dumps(list(ident.component_risk)), "parent_id": parent_id,
                "channel": channel, "review": json.dumps(ident.review) if ident.review else None,
                "site": site,
            })
        return dev_id

    def devices(self, scan_id: int | None = None, *, restricted_only: bool = False,
                limit: int | None = None, scan_ids: Iterable[int] | None = None) -> list[dict[str, Any]]:
        """Devices with their identification in ``scan_id`` (default: each device's latest; with
        ``scan_ids``: each device once, from the latest of those scans that saw it).

        Each row: device_id, ip, mac, serial, site, first_seen, last_seen, manufacturer, brand, model,
        firmware, device_type, restricted (True/False/None), lists (list), confidence, evidence (list),
        component_risk (list), parent_id, channel, scan_id, note, review ({"maker", "reason"} or None).
        A scan's rows are what that scan saw (its site and IPs; first and last seen up to that scan):
        later scans do not change them.
        """
        params: list[Any] = []
        if scan_id is None and scan_ids is None:
            base = ("select i.* from identifications i join (select device_id, max(scan_id) as s from "
                    "identifications group by device_id) m on i.device_id = m.device_id and i.scan_id = m.s")
        elif scan_ids is not None:
            ids = sorted({int(x) for x in scan_ids}) or [-1]
            inlist = ", ".join(str(x) for x in ids)
            base = ("select i.* from identifications i join (select device_id, max(scan_id) as s from "
                    f"identifications where scan_id in ({inlist}) group by device_id) m "
                    "on i.device_id = m.device_id and i.scan_id = m.s")
        else:
            base = "select i.* from identifications i where i.scan_id = ?"
            params = [scan_id]
        if scan_id is None and scan_ids is None:
            seen = "d.first_seen, d.last_seen, d.first_scan, coalesce(x.site, d.site) as site, p.ip as parent_ip"
            parent = "left join devices p on p.id = x.parent_id"
        else:  # as of that scan
            seen = ("(select min(o.seen_at) from observations o where o.device_id = x.device_id and "
                    "o.scan_id <= x.scan_id) as first_seen, (select max(o.seen_at) from observations o where "
                    "o.device_id = x.device_id and o.scan_id = x.scan_id) as last_seen, "
                    "(select min(o.scan_id) from observations o where o.device_id = x.device_id) as first_scan, "
                    "coalesce(x.site, s.site) as site, p.ip as parent_ip")
            parent = ("left join identifications p on p.device_id = x.parent_id and p.scan_id = x.scan_id "
                      "left join scans s on s.id = x.scan_id")
        sql = (f"select x.*, {seen}, n.text as note "
               f"from ({base}) x join devices d on d.id = x.device_id left join notes n on n.key = "
               f"coalesce(x.mac, 'device:' || cast(x.device_id as text)) {parent}")
        if restricted_only:
            sql += " where x.restricted = 1"
        # NULLs placed explicitly: SQLite and PostgreSQL disagree on where they sort by default
        sql += (" order by case when x.restricted = 1 then 0 when x.restricted is null then 1 else 2 end, "
                "x.manufacturer nulls first, length(x.ip) nulls first, x.ip nulls first, x.device_id")
        if limit:
            sql += f" limit {int(limit)}"
        return [_device_row(r) for r in self.db.query(sql, params)]

    def device(self, device_id: int) -> dict[str, Any]:
        rows = [r for r in self.devices() if r["device_id"] == device_id]
        if not rows:
            raise StoreError(f"no device with id {device_id}")
        return rows[0]

    def device_history(self, device_id: int) -> list[dict[str, Any]]:
        """One row per scan that saw the device, oldest first: scan_id, started_at, ip, site, firmware, ..."""
        sql = ("select i.*, s.started_at, s.site as scan_site from identifications i join scans s "
               "on s.id = i.scan_id where i.device_id = ? order by s.started_at, i.scan_id")
        return [_device_row(r) for r in self.db.query(sql, [device_id])]

    def observations(self, scan_id: int) -> Iterator[tuple[int, EvidenceRecord]]:
        """(device id, evidence record) for every observation of a scan."""
        for r in self.db.query("select device_id, record from observations where scan_id = ? order by id",
                               [scan_id]):
            yield r["device_id"], parse_record(json.loads(r["record"]))

    def device_ids_in_scan(self, scan_id: int) -> set[int]:
        return {r["device_id"] for r in self.db.query(
            "select device_id from identifications where scan_id = ?", [scan_id])}

    # -- push: one scan of a sensor's store copied whole into a central store --------------------
    _IDENT_COLS = ("ip", "mac", "manufacturer", "brand", "model", "firmware", "serial", "device_type",
                   "restricted", "lists", "confidence", "evidence", "policy", "component_risk", "channel",
                   "review", "site")
    _SCAN_COLS = ("started_at", "finished_at", "status", "targets", "options", "site", "policy",
                  "camsweep_version", "fingerprints_version", "device_count", "restricted_count", "error",
                  "review_count", "uid")

    def export_scan(self, scan_id: int) -> dict[str, Any]:
        """Everything of one scan that a push carries: its row and, per identification, what was seen."""
        scan = next(iter(self.db.query("select * from scans where id = ?", [scan_id])), None)
        if scan is None:
            raise StoreError(f"no scan with id {scan_id} in {self.path}")
        rows = list(self.db.query(
            "select i.*, o.seen_at, o.record from identifications i left join observations o "
            "on o.id = i.observation_id where i.scan_id = ? order by i.parent_id is not null, i.id", [scan_id]))
        return {"scan": scan, "rows": rows}

    def import_scan(self, bundle: dict[str, Any]) -> tuple[int, bool]:
        """Write an exported scan in one transaction, keyed by the scan's ``uid``: a scan already here with
        the same status is left alone (returns its id, False); one here with another status (say, resumed
        and finished since) is replaced whole. Devices are found by the same identity as a scan's."""
        sc = bundle["scan"]
        uid = sc.get("uid")
        if not uid:
            raise StoreError("a scan without uid cannot be pushed (migrate the sensor's store)")
        with self._write():
            ex = list(self.db.query("select id, status, device_count from scans where uid = ?", [uid]))
            if ex and ex[0]["status"] == sc["status"] and ex[0]["device_count"] == sc["device_count"]:
                return int(ex[0]["id"]), False
            row = {c: sc.get(c) for c in self._SCAN_COLS}
            if ex:
                sid = int(ex[0]["id"])
                self.db.execute("delete from identifications where scan_id = ?", [sid])
                self.db.execute("delete from observations where scan_id = ?", [sid])
                self._update("scans", sid, row)
            else:
                sid = self._insert("scans", row)
            self._import_rows(sid, sc, bundle["rows"])
        return sid, True

    def _import_rows(self, sid: int, sc: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        """The identifications of a pushed scan, in few statements: the candidate devices of every row
        read at once, identity decided by match_identity in memory (in the rows' order, so a device the
        scan saw twice is one), then new devices, updates, observations and identifications in batches."""
        def site_of(r: dict[str, Any]) -> str | None:
            return r.get("site") or sc.get("site")

        top = [r for r in rows if r.get("parent_id") is None]
        self._lock_identity(k for r in top for k in self.identity_keys(r["mac"], r["serial"], r["ip"], site_of(r)))
        cands: dict[int, dict[str, Any]] = {}
        index: dict[tuple[str, Any], list[dict[str, Any]]] = {}

        def add(c: dict[str, Any]) -> None:  # stale entries are harmless: match_identity checks values
            cands[c["id"]] = c
            for key in (("s", c["serial"]), ("m", c["mac"]), ("i", c["ip"])):
                if key[1]:
                    index.setdefault(key, []).append(c)

        def near(mac: str | None, serial: str | None, ip: str | None) -> list[dict[str, Any]]:
            out = {c["id"]: c for key in (("s", serial), ("m", mac), ("i", ip)) if key[1]
                   for c in index.get(key, ())}
            return list(out.values())

        for i in range(0, len(top), 300):
            chunk = top[i:i + 300]
            where, params = [], []
            for col in ("serial", "mac", "ip"):
                vals = sorted({r[col] for r in chunk if r[col]})
                if vals:
                    where.append(f"{col} in ({', '.join('?' * len(vals))})")
                    params += vals
            if where:
                for c in self.db.query(f"select {self._IDENTITY_COLS} from devices where {' or '.join(where)}",
                                       params):
                    add(dict(c))
        new_devs: list[dict[str, Any]] = []
        updates: dict[int, dict[str, Any]] = {}
        idmap: dict[int, int] = {}
        sightings: dict[int, tuple[dict[str, Any], str, str | None, int | None]] = {}  # device -> the last
        for r in rows:
            site = site_of(r)
            parent = idmap.get(r["parent_id"]) if r.get("parent_id") is not None else None
            seen = r.get("seen_at") or sc.get("started_at") or now_iso()
            current = {**{k: r[k] for k in ("manufacturer", "brand", "model", "firmware", "device_type",
                                            "restricted", "lists", "confidence")},
                       "ip": r["ip"], "last_seen": seen, "last_scan": sid, "parent_id": parent,
                       "channel": r["channel"]}
            if r.get("parent_id") is None:
                dev = match_identity(near(r["mac"], r["serial"], r["ip"]), r["mac"], r["serial"], r["ip"], site)
            else:
                self._lock_identity(self.identity_keys(r["mac"], r["serial"], None, site, parent, r["channel"]))
                dev = match_identity(near(r["mac"], r["serial"], None), r["mac"], r["serial"], None, site)
                if dev is None:
                    dev = next((d for d, c in cands.items() if c["parent_id"] == parent and parent is not None
                                and c.get("channel") == r["channel"]), None)
                if dev is None and (parent or 0) > 0 or dev is None and (r["mac"] or r["serial"]):
                    dev = self.resolve_device(r["mac"], r["serial"], None, site,
                                              parent if (parent or 0) > 0 else None, r["channel"])
                    if dev is not None and dev not in cands:
                        add(dict(next(self.db.query(
                            f"select {self._IDENTITY_COLS}, channel from devices where id = ?", [dev]))))
            if dev is None:
                dev = -(len(new_devs) + 1)
                row = {**current, "mac": r["mac"], "serial": r["serial"], "site": site, "first_seen": seen,
                       "first_scan": sid}
                new_devs.append(row)
                add({"id": dev, **row})
            else:
                stored = cands[dev]
                upd = device_update(stored, current, mac=r["mac"], serial=r["serial"], site=site, seen_at=seen,
                                    scan_id=sid)
                stored.update(upd)
                if upd:
                    add(stored)
                if dev > 0 and upd:
                    updates.setdefault(dev, {}).update(upd)
                elif dev < 0:
                    new_devs[-dev - 1].update(upd)
            idmap[r["device_id"]] = dev
            sightings.pop(dev, None)  # a device seen twice in the scan: the later sighting stands
            sightings[dev] = (r, seen, site, parent)
        real = self._insert_many("devices", new_devs) if new_devs else []

        def fix(d: int | None) -> int | None:
            return real[-d - 1] if d is not None and d < 0 else d

        if real:  # children of new NVRs were written before their parent's id was known
            kids = [(fix(row["parent_id"]), real[i]) for i, row in enumerate(new_devs)
                    if row["parent_id"] is not None and row["parent_id"] < 0]
            self._execute_many("update devices set parent_id = ? where id = ?", kids)
        groups: dict[tuple[str, ...], list[list[Any]]] = {}
        for dev, upd in updates.items():
            if "parent_id" in upd:
                upd["parent_id"] = fix(upd["parent_id"])
            groups.setdefault(tuple(upd), []).append([*upd.values(), dev])
        for cols, params in groups.items():
            sets = ", ".join(f'"{c}" = ?' for c in cols)
            self._execute_many(f"update devices set {sets} where id = ?", params)
        order = list(sightings.items())
        obs = self._insert_many("observations", [
            {"scan_id": sid, "device_id": fix(dev), "seen_at": seen, "ip": r["ip"], "mac": r["mac"],
             "record": r.get("record")} for dev, (r, seen, _site, _p) in order])
        self._insert_many("identifications", [
            {**{c: r.get(c) for c in self._IDENT_COLS}, "site": site, "scan_id": sid, "device_id": fix(dev),
             "observation_id": obs[i], "parent_id": fix(parent)}
            for i, (dev, (r, _seen, site, parent)) in enumerate(order)])
        if len(order) != len(rows):
            self._update("scans", sid, {"device_count": len(order)})

    def _insert_many(self, table: str, rows: list[dict[str, Any]]) -> list[int]:
        """Rows that share their columns; their ids in order (PostgreSQL: one pipelined batch)."""
        if not rows:
            return []
        if not self.pg:
            return [self._insert(table, r) for r in rows]
        cols = list(rows[0])
        sql = (f'insert into "{table}" ({", ".join(chr(34) + c + chr(34) for c in cols)}) '
               f'values ({", ".join("?" * len(cols))}) returning id')
        return self.db.insert_many(sql, [[r[c] for c in cols] for r in rows])

    def _execute_many(self, sql: str, params: list[Any]) -> None:
        if not params:
            return
        if self.pg:
            self.db.executemany(sql, params)
        else:
            self.db.conn.executemany(sql, params)

    def pushed(self, target: str) -> dict[str, str]:
        """scan uid -> the status it had when it was pushed to ``target`` (a key without credentials)."""
        return {r["scan_uid"]: r["status"] for r in self.db.query(
            "select scan_uid, status from pushes where target = ?", [target])}

    def mark_pushed(self, uid: str, target: str, status: str, central_id: int) -> None:
        with self._write():
            self.db.execute("insert into pushes (scan_uid, target, status, central_id, pushed_at) "
                            "values (?, ?, ?, ?, ?) on conflict (scan_uid, target) do update set "
                            "status = excluded.status, central_id = excluded.central_id, "
                            "pushed_at = excluded.pushed_at", [uid, target, status, central_id, now_iso()])

    def counts(self) -> dict[str, int]:
        """Rows per table (benchmarks, sizing, the push summary)."""
        return {t: int(next(self.db.query(f'select count(*) as n from "{t}"'))["n"])
                for t in ("scans", "devices", "observations", "identifications", "notes", "plans")}

    # -- notes (kept by MAC, so they follow a device across IP changes) -----------------------
    @staticmethod
    def note_key(mac: str | None, device_id: int) -> str:
        return mac or f"device:{device_id}"

    def set_note(self, key: str, text: str) -> None:
        with self._write():
            if text.strip():
                self.db.execute("insert into notes (key, text, updated_at) values (?, ?, ?) on conflict (key) "
                                "do update set text = excluded.text, updated_at = excluded.updated_at",
                                [key, text, now_iso()])
            else:
                self.db.execute("delete from notes where key = ?", [key])

    def note(self, key: str) -> str:
        r = list(self.db.query("select text from notes where key = ?", [key]))
        return r[0]["text"] if r else ""

    # -- replacement plans --------------------------------------------------------------------
    def save_plan(self, device_id: int, **fields: Any) -> None:
        allowed = set(PLAN_COLUMNS)
        unknown = set(fields) - allowed
        if unknown:
            raise StoreError(f"unknown plan fields: {', '.join(sorted(unknown))}")
        if "status" in fields and fields["status"] not in PLAN_STATUSES:
            raise StoreError(f"plan status must be one of {', '.join(PLAN_STATUSES)}")
        if "public_safety" in fields:
            fields["public_safety"] = _b(fields["public_safety"])
        row = {"device_id": device_id, **fields, "updated_at": now_iso()}
        cols = ", ".join(f'"{c}"' for c in row)
        sets = ", ".join(f'"{c}" = excluded."{c}"' for c in row if c != "device_id")
        with self._write():
            self.db.execute(f"insert into plans ({cols}) values ({', '.join('?' * len(row))}) "
                            f"on conflict (device_id) do update set {sets}", list(row.values()))

    def plan(self, device_id: int) -> dict[str, Any] | None:
        r = list(self.db.query("select * from plans where device_id = ?", [device_id]))
        return r[0] if r else None

    def plans(self) -> dict[int, dict[str, Any]]:
        return {r["device_id"]: r for r in self.db.query("select * from plans")}


def match_identity(cands: Iterable[dict[str, Any]], mac: str | None, serial: str | None, ip: str | None,
                   site: str | None) -> int | None:
    """Which of the candidate devices (rows with id, mac, serial, ip, site, parent_id) these keys name:
    the one answer to "is this the same device?", for a scan and a push alike.

    Serial first; then MAC (a device that carries another serial is another device); then IP, only at
    the same site and only when neither side has a MAC or serial the other lacks (never a NVR channel)."""
    cands = list(cands)
    if serial:
        hit = [c["id"] for c in cands if c["serial"] == serial]
        if hit:
            return min(hit)
    if mac:
        hit = [c["id"] for c in cands if c["mac"] == mac and not (serial and c["serial"])]
        if hit:
            return min(hit)
    if ip:
        hit = [c["id"] for c in cands if c["ip"] == ip and (c["site"] or "") == (site or "")
               and c["parent_id"] is None and not (mac and c["mac"]) and not (serial and c["serial"])]
        if hit:
            return max(hit)
    return None


def device_update(stored: dict[str, Any], current: dict[str, Any], *, mac: str | None, serial: str | None,
                  site: str | None, seen_at: str, scan_id: int) -> dict[str, Any]:
    """The columns of a stored device that a sighting changes: its current state when the sighting is its
    newest, its first sighting when older (a scan pushed late), and a MAC or serial learnt."""
    upd: dict[str, Any] = {}
    if not stored["last_seen"] or seen_at >= stored["last_seen"]:
        upd.update(current)
        if site:
            upd["site"] = site
    if stored["first_seen"] and seen_at < stored["first_seen"]:
        upd.update({"first_seen": seen_at, "first_scan": scan_id})
    if mac:
        upd["mac"] = mac
    if serial:
        upd["serial"] = serial
    return upd


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (one we may not signal still counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _scan_info(r: dict[str, Any]) -> ScanInfo:
    opts = json.loads(r["options"] or "{}")
    opts.pop("_pid", None)
    opts.pop("_host", None)
    return ScanInfo(id=r["id"], started_at=r["started_at"], finished_at=r["finished_at"], status=r["status"],
                    targets=json.loads(r["targets"] or "[]"), options=opts, site=r["site"],
                    policy=r["policy"], camsweep_version=r["camsweep_version"],
                    fingerprints_version=r["fingerprints_version"], device_count=r["device_count"] or 0,
                    restricted_count=r["restricted_count"] or 0, review_count=r.get("review_count") or 0)


def _device_row(r: dict[str, Any]) -> dict[str, Any]:
    out = dict(r)
    out.pop("id", None)
    for k in ("lists", "evidence", "component_risk"):
        if k in out:
            out[k] = json.loads(out[k] or "[]")
    if "restricted" in out:
        out["restricted"] = None if out["restricted"] is None else bool(out["restricted"])
    if "review" in out:
        out["review"] = _review(out["review"])
    return out


def _review(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    try:
        v = json.loads(text)
    except ValueError:
        return None
    if not isinstance(v, dict) or not v.get("maker"):
        return None
    return {"maker": str(v["maker"]), "reason": str(v.get("reason") or "")}
