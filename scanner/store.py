"""The SQLite store (sqlite-utils): scans, devices, observations, identifications, notes and plans.

All SQL lives here. Schema changes are named migrations, each applied once in a transaction and
recorded in ``_migrations``. The database runs in WAL mode and every device is committed as soon as it
is identified, so a scan killed half-way leaves a readable store holding what it found; its scan row
stays ``running`` and is marked ``incomplete`` the next time the store is opened.

Identity across scans: a device is the same device when its MAC matches; failing that, its serial;
failing both, its IP (only when the stored device has no MAC of its own, or none was seen). A camera
behind an NVR's PoE port with neither MAC nor serial is the same NVR's same channel.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scanner import __version__
from scanner.errors import DeviceWriteError, StoreError
from scanner.evidence import EvidenceRecord, Identification, clean_text, dump_record, parse_record
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


def default_db_path() -> Path:
    """``$CAMSWEEP_DB`` if set, else ``<user data dir>/camsweep/camsweep.db``."""
    env = os.environ.get("CAMSWEEP_DB")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("camsweep")) / "camsweep.db"


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


MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("001_initial", _m001_initial),
    ("002_identification_review", _m002_identification_review),
]


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
    """One camsweep database. ``Store(path)``; ``Store(":memory:")`` for tests."""

    def __init__(self, path: str | Path | None = None, *, recover: bool = True) -> None:
        self.path = str(path) if path is not None else str(default_db_path())
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
    def migrate(self) -> list[str]:
        """Apply pending migrations under the database's write lock, in one transaction. Returns the
        names applied. Two processes opening a new store at once: the second waits for the lock, then
        finds the migrations done (it reads them again once it holds the lock)."""
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

    def schema_version(self) -> str:
        rows = list(self.db.query("select name from _migrations order by name desc limit 1"))
        return rows[0]["name"] if rows else ""

    def close(self) -> None:
        self.db.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes made inside commit together or not at all (a recorder and its channel devices: a scan
        killed between them leaves neither, so ``--resume`` redoes the recorder whole). Nests: an inner
        one joins the outer."""
        if getattr(self, "_tx_depth", 0):
            yield
            return
        with self.db.conn:
            self.db.execute("BEGIN IMMEDIATE")
            self._tx_depth = 1
            try:
                yield
            finally:
                self._tx_depth = 0

    # -- scans ----------------------------------------------------------------------------
    def start_scan(self, targets: list[str], *, options: dict[str, Any] | None = None, site: str | None = None,
                   policy: str = "ndaa889", fingerprints_version: str | None = None) -> int:
        """A new scan row (status ``running``). ``options`` must not hold credentials."""
        with self.db.conn:
            row = self.db["scans"].insert({
                "started_at": now_iso(), "finished_at": None, "status": "running",
                "targets": json.dumps(list(targets)), "options": json.dumps(options or {}, default=str),
                "site": site, "policy": policy, "camsweep_version": __version__,
                "fingerprints_version": fingerprints_version, "device_count": 0, "restricted_count": 0,
                "review_count": 0, "error": None,
            })
        return int(row.last_pk)

    def finish_scan(self, scan_id: int, status: str = "complete", error: str | None = None) -> None:
        counts = next(self.db.query(
            "select count(*) as n, coalesce(sum(restricted = 1), 0) as r, count(review) as v "
            "from identifications where scan_id = ?", [scan_id]))
        with self.db.conn:
            self.db["scans"].update(scan_id, {"finished_at": now_iso(), "status": status, "error": error,
                                              "device_count": counts["n"], "restricted_count": counts["r"],
                                              "review_count": counts["v"]})

    def set_fingerprints_version(self, scan_id: int, version: str | None) -> None:
        """Record the fingerprint database a scan used (known once it has loaded)."""
        with self.db.conn:
            self.db["scans"].update(scan_id, {"fingerprints_version": version})

    def reopen_scan(self, scan_id: int, *, pid: int | None = None) -> None:
        """Set an incomplete scan running again (``--resume``), owned by ``pid``."""
        info = self.scan(scan_id)
        opts = dict(info.options)
        if pid is not None:
            opts["_pid"] = pid
        with self.db.conn:
            self.db["scans"].update(scan_id, {"status": "running", "finished_at": None, "error": None,
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
        for r in rows:
            pid = json.loads(r["options"] or "{}").get("_pid")
            if pid and pid_alive(int(pid)):
                continue
            self.finish_scan(r["id"], status="incomplete", error="the scan stopped before it finished")
            n += 1
        return n

    def scan(self, scan_id: int) -> ScanInfo:
        try:
            r = self.db["scans"].get(scan_id)
        except sqlite_utils.db.NotFoundError:
            raise StoreError(f"no scan with id {scan_id} in {self.path}") from None
        return _scan_info(r)

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

    # -- devices --------------------------------------------------------------------------
    def find_device(self, mac: str | None, serial: str | None, ip: str | None) -> int | None:
        if mac:
            r = list(self.db.query("select id from devices where mac = ? order by id limit 1", [mac]))
            if r:
                return r[0]["id"]
        if serial:
            r = list(self.db.query("select id from devices where serial = ? order by id limit 1", [serial]))
            if r:
                return r[0]["id"]
        if ip:
            sql = "select id from devices where ip = ? and (mac is null or ? is null) order by id desc limit 1"
            r = list(self.db.query(sql, [ip, mac]))
            if r:
                return r[0]["id"]
        return None

    def _insert(self, table: str, row: dict[str, Any]) -> int:
        """One row by plain SQL (the scan's hot path: sqlite-utils' insert() costs ~0.3 ms of table
        introspection a call, three calls a device); returns its rowid. Values are already SQL types."""
        cols = ", ".join(f'"{c}"' for c in row)
        cur = self.db.conn.execute(f'insert into "{table}" ({cols}) values ({", ".join("?" * len(row))})',
                                   list(row.values()))
        return int(cur.lastrowid)  # type: ignore[arg-type]

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
                sqlite3.DataError) as exc:  # this device's values, not the store: the transaction rolled back
            raise DeviceWriteError(f"device {record.ip or record.mac or '?'} not stored: "
                                   f"{type(exc).__name__}: {clean_text(str(exc)[:200])}") from exc

    def _record_device(self, scan_id: int, record: EvidenceRecord, ident: Identification, *, policy: str,
                       site: str | None, parent_id: int | None, channel: str | None) -> int:
        now = now_iso()
        serial = ident.serial or (record.onvif.serial if record.onvif and record.onvif.serial else None)
        fields = {
            "ip": record.ip, "last_seen": now, "last_scan": scan_id,
            "manufacturer": ident.manufacturer, "brand": ident.brand, "model": ident.model,
            "firmware": ident.firmware, "device_type": ident.device_type, "restricted": _b(ident.restricted),
            "lists": json.dumps(list(ident.lists)), "confidence": ident.confidence,
            "parent_id": parent_id, "channel": channel,
        }
        with self.transaction():
            dev_id = self.find_device(record.mac, serial, record.ip if parent_id is None else None)
            if dev_id is None and parent_id is not None and channel:
                # a camera behind an NVR with no MAC or serial of its own: the same NVR's same channel
                r = list(self.db.query("select id from devices where parent_id = ? and channel = ? "
                                       "order by id limit 1", [parent_id, channel]))
                dev_id = r[0]["id"] if r else None
            if dev_id is None:
                dev_id = self._insert("devices", {**fields, "mac": record.mac, "serial": serial, "site": site,
                                                  "first_seen": now, "first_scan": scan_id})
            else:
                upd = dict(fields)
                if record.mac:
                    upd["mac"] = record.mac
                if serial:
                    upd["serial"] = serial
                if site:
                    upd["site"] = site
                sets = ", ".join(f'"{c}" = ?' for c in upd)
                self.db.conn.execute(f"update devices set {sets} where id = ?", [*upd.values(), dev_id])
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
            })
        return dev_id

    def devices(self, scan_id: int | None = None, *, restricted_only: bool = False,
                limit: int | None = None) -> list[dict[str, Any]]:
        """Devices with their identification in ``scan_id`` (default: each device's latest).

        Each row: device_id, ip, mac, serial, site, first_seen, last_seen, manufacturer, brand, model,
        firmware, device_type, restricted (True/False/None), lists (list), confidence, evidence (list),
        component_risk (list), parent_id, channel, scan_id, note, review ({"maker", "reason"} or None).
        """
        if scan_id is None:
            base = ("select i.* from identifications i join (select device_id, max(scan_id) as s from "
                    "identifications group by device_id) m on i.device_id = m.device_id and i.scan_id = m.s")
            params: list[Any] = []
        else:
            base = "select i.* from identifications i where i.scan_id = ?"
            params = [scan_id]
        sql = (f"select x.*, d.site, d.first_seen, d.last_seen, d.first_scan, n.text as note, p.ip as parent_ip "
               f"from ({base}) x join devices d on d.id = x.device_id left join notes n on n.key = "
               "coalesce(x.mac, 'device:' || x.device_id) left join devices p on p.id = x.parent_id")
        if restricted_only:
            sql += " where x.restricted = 1"
        sql += (" order by x.restricted = 1 desc, x.restricted is null desc, x.manufacturer, "
                "length(x.ip), x.ip")
        if limit:
            sql += f" limit {int(limit)}"
        return [_device_row(r) for r in self.db.query(sql, params)]

    def device(self, device_id: int) -> dict[str, Any]:
        rows = [r for r in self.devices() if r["device_id"] == device_id]
        if not rows:
            raise StoreError(f"no device with id {device_id}")
        return rows[0]

    def device_history(self, device_id: int) -> list[dict[str, Any]]:
        """One row per scan that saw the device, oldest first: scan_id, started_at, ip, firmware, ..."""
        sql = ("select i.*, s.started_at, s.site as scan_site from identifications i join scans s "
               "on s.id = i.scan_id where i.device_id = ? order by i.scan_id")
        return [_device_row(r) for r in self.db.query(sql, [device_id])]

    def observations(self, scan_id: int) -> Iterator[tuple[int, EvidenceRecord]]:
        """(device id, evidence record) for every observation of a scan."""
        for r in self.db.query("select device_id, record from observations where scan_id = ? order by id",
                               [scan_id]):
            yield r["device_id"], parse_record(json.loads(r["record"]))

    def device_ids_in_scan(self, scan_id: int) -> set[int]:
        return {r["device_id"] for r in self.db.query(
            "select device_id from identifications where scan_id = ?", [scan_id])}

    # -- notes (kept by MAC, so they follow a device across IP changes) -----------------------
    @staticmethod
    def note_key(mac: str | None, device_id: int) -> str:
        return mac or f"device:{device_id}"

    def set_note(self, key: str, text: str) -> None:
        with self.db.conn:
            if text.strip():
                self.db["notes"].upsert({"key": key, "text": text, "updated_at": now_iso()}, pk="key")
            else:
                self.db.execute("delete from notes where key = ?", [key])

    def note(self, key: str) -> str:
        r = list(self.db.query("select text from notes where key = ?", [key]))
        return r[0]["text"] if r else ""

    # -- replacement plans --------------------------------------------------------------------
    def save_plan(self, device_id: int, **fields: Any) -> None:
        allowed = {c.name for c in self.db["plans"].columns} - {"device_id", "updated_at"}
        unknown = set(fields) - allowed
        if unknown:
            raise StoreError(f"unknown plan fields: {', '.join(sorted(unknown))}")
        if "status" in fields and fields["status"] not in PLAN_STATUSES:
            raise StoreError(f"plan status must be one of {', '.join(PLAN_STATUSES)}")
        if "public_safety" in fields:
            fields["public_safety"] = _b(fields["public_safety"])
        with self.db.conn:
            self.db["plans"].upsert({"device_id": device_id, **fields, "updated_at": now_iso()}, pk="device_id")

    def plan(self, device_id: int) -> dict[str, Any] | None:
        r = list(self.db.query("select * from plans where device_id = ?", [device_id]))
        return r[0] if r else None

    def plans(self) -> dict[int, dict[str, Any]]:
        return {r["device_id"]: r for r in self.db.query("select * from plans")}


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
