"""From a host's fragments to the devices a scan stores.

:func:`merge_fragments` makes one :class:`~scanner.evidence.EvidenceRecord` of a host's probe fragments
(a malformed fragment is dropped alone); :func:`split_channels` takes an NVR's channel entries out of its
record, each a child record of its own. :class:`DeviceWriter` identifies each record (the fingerprints load
in a thread while discovery runs) and writes it to the store in one writer thread, a recorder and its
channel devices in one transaction, and tells the caller (a ``DeviceIdentified`` event per device).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import ipaddress
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from scanner import macsources
from scanner.errors import CamsweepError, DeviceWriteError
from scanner.events import DeviceIdentified, ScanEvent, ScanWarning
from scanner.evidence import (
    EvidenceError,
    EvidenceRecord,
    Identification,
    clean_evidence,
    normalize_mac,
    parse_record,
)

if TYPE_CHECKING:  # workers never open the store: they need not import sqlite-utils (and numpy)
    from scanner.options import ScanOptions
    from scanner.store import Store

NVR_CHANNEL = "nvr_channel"
RECORDER_TYPES = ("nvr", "dvr")

Kids = list[tuple[EvidenceRecord, Identification, str | None]]  # channel records, identifications, channels


def merge_fragments(ip: str, mac: str | None, fragments: Iterable[Mapping[str, Any]]) -> EvidenceRecord:
    """One record for a host from probe fragments. A fragment that does not parse is dropped alone,
    so one hostile reply cannot cost the device its other evidence."""
    base: dict[str, Any] = {"ip": ip}
    if mac:
        base["mac"] = mac
    rec = parse_record(base)
    for frag in fragments:
        if not isinstance(frag, Mapping) or not frag:
            continue
        part = {k: v for k, v in clean_evidence(frag).items() if k not in ("ip", "id")}  # devices' text enters here
        fmac = part.pop("mac", None)
        if fmac and not rec.mac:
            n = normalize_mac(fmac) if isinstance(fmac, str) else None
            if n:
                rec = parse_record({**rec.to_dict(), "mac": n})
        if not part:
            continue
        try:
            rec = rec.merge(parse_record({"ip": ip, **part}))
        except EvidenceError:
            # try key by key: keep what is readable
            for k, v in part.items():
                with contextlib.suppress(EvidenceError):
                    rec = rec.merge(parse_record({"ip": ip, k: v}))
    return rec


def split_channels(rec: EvidenceRecord) -> tuple[EvidenceRecord, list[EvidenceRecord]]:
    """Take NVR channel entries out of an NVR's record; each becomes a child record of its own."""
    chans = [d for d in rec.discovery if d.protocol == NVR_CHANNEL]
    if not chans:
        return rec, []
    d = rec.to_dict()
    d["discovery"] = [x.to_dict() for x in rec.discovery if x.protocol != NVR_CHANNEL]
    parent = parse_record(d)
    children: list[EvidenceRecord] = []
    seen: set[str] = set()
    for c in chans:
        f = dict(c.fields)
        key = f.get("channel") or f.get("serial") or f.get("ip") or json.dumps(f, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        child: dict[str, Any] = {"discovery": [{"protocol": NVR_CHANNEL, "fields": f}]}
        ip = f.get("ip", "")
        with contextlib.suppress(ValueError):
            if ip:
                child["ip"] = str(ipaddress.ip_address(ip))
        mac = normalize_mac(f.get("mac", ""))
        if mac:
            child["mac"] = mac
        with contextlib.suppress(EvidenceError):
            children.append(parse_record(child))
    return parent, children


def load_identifier(policy: str) -> Any:
    from scanner.identify import Identifier

    return Identifier(policy=policy)


def fingerprints_version() -> str | None:
    with contextlib.suppress(Exception):
        import fingerprints

        return str(fingerprints.load_database().version)  # type: ignore[attr-defined]
    return None


class DeviceWriter:
    """Identifies and stores the devices of one scan, in one writer thread: a slow commit (a busy disk) must
    not stall every probe on the event loop. ``identifier``: given, or loading (``identifier_future``)."""

    def __init__(self, store: Store, scan_id: int, options: ScanOptions,
                 emit: Callable[[ScanEvent], None]) -> None:
        self.store = store
        self.scan_id = scan_id
        self.o = options
        self.emit = emit
        self.identifier = options.identifier
        self.identifier_future: asyncio.Future | None = None  # loading in a thread while discovery runs
        self.thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="camsweep-store")
        self.devices = 0
        self._known: dict[int, tuple[EvidenceRecord, Identification]] = {}  # identified ahead (keep())

    def shutdown(self) -> None:
        """A write already started finishes; none is left half-done."""
        self.thread.shutdown(wait=True)

    async def ready(self) -> None:
        """Wait for the identifier (and the fingerprint database) loading in its thread."""
        if self.identifier is None and self.identifier_future is not None:
            try:
                self.identifier = await asyncio.shield(self.identifier_future)
            except CamsweepError:
                raise
            except Exception as exc:
                raise CamsweepError(f"cannot load the fingerprints: {type(exc).__name__}: {exc}") from None
            version = fingerprints_version()
            if version:
                await asyncio.get_running_loop().run_in_executor(
                    self.thread, functools.partial(self.store.set_fingerprints_version, self.scan_id, version))

    def identify(self, rec: EvidenceRecord) -> Identification:
        try:  # plus where the record's MAC came from (scanner.macsources), when it says
            return macsources.annotate(self.identifier.identify(rec), rec)
        except Exception as exc:  # the identifier must not lose a device: store it unidentified
            return Identification(notes=(f"identification failed: {type(exc).__name__}",))

    def keep(self, rec: EvidenceRecord, ident: Identification) -> None:
        """``rec`` was identified before it is written: record() writes this very record with ``ident``."""
        self._known[id(rec)] = (rec, ident)

    async def write(self, rec: EvidenceRecord, ident: Identification, **kw: Any) -> int:
        loop = asyncio.get_running_loop()
        call = functools.partial(self.store.record_device, self.scan_id, rec, ident, policy=self.o.policy,
                                 site=self.o.site, **kw)
        return await asyncio.shield(loop.run_in_executor(self.thread, call))

    async def record(self, rec: EvidenceRecord) -> None:
        await self.ready()
        parent, children = split_channels(rec)
        known = self._known.pop(id(parent), None)
        ident = known[1] if known is not None and known[0] is parent else self.identify(parent)
        kids = []
        for child in children:
            chan = next((d.fields.get("channel") for d in child.discovery if d.protocol == NVR_CHANNEL), None)
            kids.append((child, self.identify(child), chan))
        try:
            if not kids:
                dev_id, kid_ids = await self.write(parent, ident), []
            else:  # a recorder and its channels in one transaction: a kill between them leaves neither (resume)
                loop = asyncio.get_running_loop()
                call = functools.partial(self._write_recorder, parent, ident, kids)
                dev_id, kid_ids = await asyncio.shield(loop.run_in_executor(self.thread, call))
        except DeviceWriteError as exc:  # this device's values: logged, and the scan goes on
            if not kids:
                self.not_stored(exc)
                return
            dev_id, kid_ids = await self._write_one_by_one(parent, ident, kids)
            if dev_id is None:
                return
        self.devices += 1
        self.emit(DeviceIdentified(_row(dev_id, parent, ident)))
        for (child, cident, chan), cid in zip(kids, kid_ids, strict=True):
            if cid is None:
                continue
            self.devices += 1
            self.emit(DeviceIdentified(_row(cid, child, cident), parent_id=dev_id, channel=chan))

    async def _write_one_by_one(self, parent: EvidenceRecord, ident: Identification,
                                kids: Kids,
                                ) -> tuple[int | None, list[int | None]]:
        """A recorder whose transaction the store refused (one device's values): each device written on
        its own, so only the refused one is missing."""
        try:
            dev_id = await self.write(parent, ident)
        except DeviceWriteError as exc:
            self.not_stored(exc)
            return None, []
        ids: list[int | None] = []
        for child, cident, chan in kids:
            try:
                ids.append(await self.write(child, cident, parent_id=dev_id, channel=chan))
            except DeviceWriteError as exc:
                self.not_stored(exc)
                ids.append(None)
        return dev_id, ids

    def not_stored(self, exc: Exception) -> None:
        logging.getLogger("camsweep.engine").warning("%s", exc)
        self.emit(ScanWarning(str(exc)))

    def _write_recorder(self, parent: EvidenceRecord, ident: Identification,
                        kids: Kids) -> tuple[int, list[int]]:
        """In the writer thread: the recorder, then its channel devices, committed together."""
        tx = getattr(self.store, "transaction", None)
        with tx() if tx is not None else contextlib.nullcontext():
            kw = {"policy": self.o.policy, "site": self.o.site}
            dev_id = self.store.record_device(self.scan_id, parent, ident, **kw)
            ids = [self.store.record_device(self.scan_id, child, cident, parent_id=dev_id, channel=chan, **kw)
                   for child, cident, chan in kids]
        return dev_id, ids


def _row(dev_id: int, rec: EvidenceRecord, ident: Identification) -> dict[str, Any]:
    return {"device_id": dev_id, "ip": rec.ip, "mac": rec.mac, **{
        k: v for k, v in ident.to_dict().items() if k != "id"}}
