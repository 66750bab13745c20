"""The camsweep Textual app: composes the screens, holds what was loaded from the store, runs workers.

Everything it decides is decided in scanner/ (store queries, plan.py for plans, filters and totals,
engine.run_scan for scans); the app only moves values between the core and the widgets.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
import time
from dataclasses import fields as dc_fields
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import App
from textual.binding import Binding
from textual.timer import Timer

from scanner import filters
from scanner import plan as planlib
from scanner.errors import CamsweepError
from scanner.events import DeviceIdentified, HostsFound, Phase, Progress, ScanEvent, ScanWarning
from scanner.ipkey import ip_key
from scanner.store import Store
from tui.screens import DeviceScreen, DevicesScreen, ExportDialog, HelpScreen, PlanEditor, ScanDialog
from tui.widgets import (
    Cell,
    CountBar,
    DeviceTable,
    PlanChanged,
    PlanPanel,
    ScanFinished,
    clean,
)

_SORTS = {
    "restricted": lambda d: ({True: 0, None: 1, False: 2}.get(d.get("restricted"), 3), not d.get("review")),
    "ip": lambda d: ip_key(d.get("parent_ip") or d.get("ip")),
    "maker": lambda d: (d.get("manufacturer") or "~").lower(),
    "brand": lambda d: (d.get("brand") or "~").lower(),
    "model": lambda d: (d.get("model") or "~").lower(),
    "type": lambda d: d.get("device_type") or "~",
    "lists": lambda d: (-len(d.get("lists") or ()), ",".join(d.get("lists") or ())),
    "mac": lambda d: d.get("mac") or "~",
    "site": lambda d: planlib.site_of(d).lower(),
    "first": lambda d: d.get("first_seen") or "",
    "last": lambda d: d.get("last_seen") or "",
}


class CamsweepApp(App[None]):
    """``CamsweepApp(db_path)``; ``camsweep tui --db PATH`` runs it."""

    TITLE = "camsweep"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("n", "new_scan", "Scan"),
        Binding("x", "export", "Export"),
        Binding("d", "toggle_dark", "Dark/light"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, db_path: str | Path | None = None, *, policy: str | None = None,
                 catalog_path: str | Path | None = None, export_dir: str | Path | None = None) -> None:
        super().__init__()
        self.db_path = db_path
        self.policy_arg = policy
        self.catalog_path = catalog_path
        self.export_dir = Path(export_dir) if export_dir else Path.cwd()
        self.store: Store | None = None
        self.catalog: planlib.Catalog | None = None
        self.policy = policy or planlib.DEFAULT_POLICY
        self.devices: list[dict[str, Any]] = []
        self.by_id: dict[int, dict[str, Any]] = {}
        self.search: dict[int, str] = {}
        self.cells: dict[int, list[Cell]] = {}
        self.items: dict[int, planlib.PlanItem] = {}
        self.totals: planlib.PlanTotals | None = None
        self.counts = filters.DeviceCounts(0, 0, 0)
        self.site_count = 0  # sites among the devices (a central store holds many)
        self.restricted_only = False
        self.panel_forced = False
        self.filter_text = ""
        self.sort_key: str | None = None
        self.sort_reverse = False
        self.shown = 0
        self.loaded = False
        self.load_seconds: float | None = None
        self.first_seconds: float | None = None
        self.first_paint = False
        self.progress = ""
        self.scanning = False
        self._view_timer: Timer | None = None
        self._pending_rows: list[dict[str, Any]] = []
        self._t0 = time.perf_counter()

    # -- start ------------------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.push_screen(DevicesScreen())
        try:
            self.store = Store(self.db_path)
            self.catalog = planlib.load_catalog(self.catalog_path)
        except CamsweepError as exc:
            self.notify(str(exc), title="cannot open", severity="error", timeout=30)
            self.call_after_refresh(self._show_error, f"error: {exc}")
            return
        if not self.policy_arg:
            sid = self.store.latest_scan_id()
            if sid:
                self.policy = self.store.scan(sid).policy or planlib.DEFAULT_POLICY
        self.load_store()

    @work(thread=True, exclusive=True, group="load")
    def load_store(self) -> None:
        """Restricted devices and their plan first (what a user opens the app for), then everything."""
        assert self.store is not None and self.catalog is not None
        try:
            first = self.store.devices(restricted_only=True)
            # what the policy restricts is fingerprints.policy's one decision (plan asks it)
            plan = planlib.make_plan(self.store, policy=self.policy, catalog=self.catalog, devices=first)
            if not self.loaded:
                painted = threading.Event()
                self.call_from_thread(self._loaded, first, plan, False, None, painted)
                painted.wait(2.0)  # let the first screen draw before the rest competes for the GIL
            devices = self.store.devices()
            if self.policy_arg:  # --policy: restriction re-evaluated under it (stored rows: the scan's own)
                from scanner.policyview import apply_policy

                apply_policy(devices, self.policy)
            plan = planlib.make_plan(self.store, policy=self.policy, catalog=self.catalog, devices=devices)
        except Exception as exc:  # a damaged store: a message, not a traceback
            self.call_from_thread(self.notify, f"cannot read the store: {exc}", severity="error", timeout=30)
            return
        search = {d["device_id"]: filters.search_text(d) for d in devices}  # for the filter bar, off the UI
        self.call_from_thread(self._loaded, devices, plan, True, search)

    def _loaded(self, devices: list[dict[str, Any]], plan: planlib.Plan, complete: bool = True,
                search: dict[int, str] | None = None, painted: threading.Event | None = None) -> None:
        self.devices = devices
        self.by_id = {d["device_id"]: d for d in devices}
        self.items = {it.device_id: it for it in plan.items}
        self.totals = plan.totals
        counts = filters.count_devices(devices)
        self.site_count = len({d.get("site") for d in devices if d.get("site")})
        self.counts = counts if complete else filters.DeviceCounts(-1, counts.restricted, -1, counts.review)
        self.search = search or {}
        self.cells = {}
        self.loaded = complete
        self.first_paint = True
        self.apply_view(force=True)
        if self.first_seconds is None:
            self.first_seconds = time.perf_counter() - self._t0
        if painted is not None:
            self.call_after_refresh(painted.set)
        if complete:
            self.load_seconds = time.perf_counter() - self._t0
            self.log(f"camsweep: restricted rows after {self.first_seconds:.2f} s, all {len(devices)} devices "
                     f"after {self.load_seconds:.2f} s")

    def _show_error(self, message: str) -> None:
        try:
            self.screen_devices.query_one(CountBar).update(Text(clean(message, 300), "bold red"))
        except Exception:
            pass

    # -- the devices view ------------------------------------------------------------------------
    def cells_for(self, device_id: int) -> list[Cell]:
        d = self.by_id.get(device_id)
        return self.row_cells(d) if d is not None else [("", "")] * 12

    def row_cells(self, d: dict[str, Any]) -> list[Cell]:
        did = d["device_id"]
        c = self.cells.get(did)
        if c is not None:
            return c
        r = d.get("restricted")
        maker = d.get("manufacturer")
        review = d.get("review")
        suspect = f"{review.get('maker') or ''}?" if review else "?"
        shown = filters.brand_display(d.get("brand"), maker) if maker else \
            (f"{d['brand']} -> {suspect}" if d.get("brand") else suspect)
        it = self.items.get(did)
        c = [
            # REV: needs review (the evidence points at a restricted maker without establishing it)
            ("YES", "bad") if r is True else ("REV", "warn") if review else ("no", "good") if r is False
            else ("?", "warn"),
            # a camera behind a recorder's PoE ports: its recorder and channel, not its internal address
            ((clean(f"{d['parent_ip']} ch{d.get('channel') or '?'}", 45), "dim") if d.get("parent_ip")
             else (clean(d.get("ip"), 45), "")),
            (clean(shown, 60), "relabel" if " -> " in shown else "" if maker else "dim"),
            (clean(d.get("model") or "", 60), ""),
            ((f"{it.tier} {it.status}", "warn" if it.status in ("planned", "ordered") else "dim") if it
             else ("", "")),
            (clean(d.get("device_type") or "", 20), ""),
            (clean(",".join(d.get("lists") or ()), 80), "dim"),
            (clean(d.get("mac") or "", 20), "dim"),
            (clean(planlib.site_of(d), 40), ""),
            (clean(d.get("brand") or "", 40), "dim"),
            (clean((d.get("first_seen") or "")[:16].replace("T", " "), 20), "dim"),
            (clean((d.get("last_seen") or "")[:16].replace("T", " "), 20), "dim"),
        ]
        self.cells[did] = c
        return c

    def schedule_view(self) -> None:
        if self._view_timer is not None:
            self._view_timer.stop()
        self._view_timer = self.set_timer(0.15, self.apply_view)

    def apply_view(self, force: bool = False) -> None:
        if not (self.loaded or force or self.first_paint):
            return
        f = filters.parse_filter(self.filter_text, self.restricted_only)
        rows = self.devices
        if f.active:
            if f.words and len(self.search) < len(self.devices):
                for d in self.devices:
                    if d["device_id"] not in self.search:
                        self.search[d["device_id"]] = filters.search_text(d)
            rows = [d for d in rows if filters.match_device(
                d, f, self.search.get(d["device_id"]),
                self.items[d["device_id"]].status if d["device_id"] in self.items else None)]
        if self.sort_key in _SORTS:
            rows = sorted(rows, key=_SORTS[self.sort_key], reverse=self.sort_reverse)
        elif self.sort_key == "plan":
            rows = sorted(rows, key=lambda d: -(self.items[d["device_id"]].priority
                                                if d["device_id"] in self.items else -1),
                          reverse=self.sort_reverse)
        try:
            table = self.screen_devices.query_one(DeviceTable)
        except Exception:
            return
        table.sort_key, table.sort_reverse = self.sort_key, self.sort_reverse
        table.set_rows([d["device_id"] for d in rows], self.cells_for)
        self.shown = len(rows)
        if f.errors:
            self.notify("; ".join(f.errors), severity="warning")
        self.update_counts()
        self.show_panel(table.current_key)

    @property
    def screen_devices(self) -> DevicesScreen:
        for s in self.screen_stack:
            if isinstance(s, DevicesScreen):
                return s
        raise LookupError("no devices screen")

    def update_counts(self) -> None:
        try:
            bar = self.screen_devices.query_one(CountBar)
        except Exception:
            return
        o = self.totals.overall if self.totals else None
        bar.show(devices=self.counts.devices, restricted=self.counts.restricted, unknown=self.counts.unknown,
                 review=self.counts.review, sites=self.site_count,
                 shown=self.shown, total=o.total if o else None, remaining=o.remaining if o else None,
                 currency=self.catalog.currency if self.catalog else "USD", policy=self.policy,
                 progress=self.progress)

    def show_panel(self, device_id: int | None) -> None:
        try:
            panel = self.screen_devices.query_one(PlanPanel)
        except Exception:
            return
        panel.show(self.items.get(device_id) if device_id is not None else None,
                   self.by_id.get(device_id) if device_id is not None else None, self.totals,
                   self.catalog.currency if self.catalog else "USD")

    # -- device detail, notes -------------------------------------------------------------------
    def open_device(self, device_id: int) -> None:
        d = self.by_id.get(device_id)
        if d is None or self.store is None:
            return
        history = self.store.device_history(device_id)
        note = self.store.note(Store.note_key(d.get("mac"), device_id))
        it = self.items.get(device_id)
        reasons = it.reasons if it else planlib.score_priority(d).reasons
        try:  # why it is flagged under the policy: law, government policy or due diligence, with citations
            from scanner.policyview import annotate

            annotate([d], self.policy)
        except Exception as exc:
            self.log(f"camsweep: why-flagged reasons unavailable: {exc}")
        self.push_screen(DeviceScreen(d, history, note, reasons, it,
                                      self.catalog.currency if self.catalog else "USD"))

    def save_note(self, device: dict[str, Any], text: str) -> None:
        if self.store is None:
            return
        if len(text) > 20_000:
            self.notify("the note is longer than 20,000 characters", severity="error")
            return
        key = Store.note_key(device.get("mac"), device["device_id"])
        self.store.set_note(key, text)
        for d in self.devices:  # the same MAC may be several rows only across stores; keep all in step
            if Store.note_key(d.get("mac"), d["device_id"]) == key:
                d["note"] = text
                self.search.pop(d["device_id"], None)
        self.notify("note saved" + (f" for {device.get('mac')}" if device.get("mac") else ""))

    # -- plans -------------------------------------------------------------------------------------
    def plan_item(self, device_id: int) -> planlib.PlanItem | None:
        it = self.items.get(device_id)
        if it is None and device_id in self.by_id and self.catalog is not None:
            it = planlib.build_item(self.by_id[device_id], None, self.catalog, self.policy)
        return it

    def models_for(self, cls: str) -> list[tuple[str, str]]:
        assert self.catalog is not None
        return [(f"{m.maker} {m.model}", f"{m.maker}\t{m.model}")
                for m in planlib.suggest_models(self.catalog, cls, self.policy)]

    def open_plan_editor(self, device_id: int) -> None:
        it = self.plan_item(device_id)
        if it is None or self.catalog is None:
            return
        classes = [(k, c.label) for k, c in self.catalog.classes.items()]
        self.push_screen(PlanEditor(it, classes, self.models_for, self.catalog.currency, self.costs_for))

    def costs_for(self, cls: str, maker_model: str) -> tuple[float, float, float]:
        assert self.catalog is not None
        _maker, _, model = maker_model.partition("\t")
        chosen = next((m for m in self.catalog.cls(cls).models if m.model == model), None)
        return planlib.default_costs(self.catalog, cls, chosen)

    def save_plan_changes(self, item: planlib.PlanItem, changes: dict[str, Any]) -> str | None:
        """Save through plan.py; returns an error message for the editor, or None."""
        if self.store is None or self.catalog is None:
            return "no store"
        try:
            new = planlib.save_item(self.store, item, self.catalog, self.policy, **changes)
        except CamsweepError as exc:
            return str(exc)
        self.items[new.device_id] = new
        self.totals = planlib.compute_totals(list(self.items.values()))
        self.cells.pop(new.device_id, None)
        d = self.by_id.get(new.device_id)
        if d is not None:
            try:
                self.screen_devices.query_one(DeviceTable).update_row(new.device_id)
            except LookupError:
                pass
        self.update_counts()
        self.show_panel(new.device_id)
        for screen in self.screen_stack:
            if isinstance(screen, DeviceScreen) and screen.device["device_id"] == new.device_id:
                screen.set_item(new)
        self.post_message(PlanChanged(new))
        return None

    def on_plan_changed(self, event: PlanChanged) -> None:
        it = event.item
        self.notify(f"plan saved: {clean(it.ip, 40)} {it.status}, {it.class_label}, "
                    f"{self.catalog.currency if self.catalog else ''} {it.cost_total:,.0f}", timeout=3)

    def export_plan(self, base: str) -> tuple[Path, Path]:
        assert self.catalog is not None
        plan = planlib.Plan(items=tuple(sorted(self.items.values(), key=lambda i: (-i.priority, i.site,
                                                                                      i.ip or ""))),
                            totals=self.totals or planlib.compute_totals([]), policy=self.policy,
                            currency=self.catalog.currency, catalog_version=self.catalog.version)
        p = Path(base).expanduser()
        if p.suffix.lower() in (".csv", ".json"):
            p = p.with_suffix("")
        if not p.is_absolute():
            p = self.export_dir / p
        csv_path, json_path = p.with_suffix(".csv"), p.with_suffix(".json")
        from scanner.private import open_private  # 0600: the plan lists devices, addresses and serials

        with open_private(csv_path, "w", encoding="utf-8", newline="") as fp:
            planlib.write_csv(plan, fp)
        with open_private(json_path, "w", encoding="utf-8") as fp:
            json.dump(planlib.plan_to_json(plan, store=str(self.store.path) if self.store else None), fp,
                      indent=2, ensure_ascii=False)
        return csv_path, json_path

    def action_export(self) -> None:
        if not self.loaded:
            return

        def done(base: str | None) -> None:
            if not base:
                return
            try:
                c, j = self.export_plan(base)
            except OSError as exc:
                self.notify(f"cannot write the plan: {exc.strerror or exc}", severity="error")
                return
            self.notify(f"plan exported: {c} and {j}", timeout=6)

        self.push_screen(ExportDialog("camsweep-plan"), done)

    # -- scans -------------------------------------------------------------------------------------
    def action_new_scan(self) -> None:
        if self.scanning:
            self.notify("a scan is already running", severity="warning")
            return

        def done(spec: dict[str, Any] | None) -> None:
            if spec:
                self.start_scan(spec["targets"], spec["options"], spec["site"])

        self.push_screen(ScanDialog(), done)

    def build_scan_options(self, engine: Any, options: dict[str, str], site: str | None) -> Any:
        known = {f.name: f for f in dc_fields(engine.ScanOptions)}
        kwargs: dict[str, Any] = {}
        for k, v in options.items():
            if k not in known:
                raise CamsweepError(f"unknown scan option {k!r}; known: {', '.join(sorted(known))}")
            ftype = str(known[k].type)
            if k.startswith("_") or k in getattr(engine.ScanOptions, "_SEAMS", ()) or ftype.startswith("dict"):
                raise CamsweepError(f"scan option {k!r} cannot be set here")
            if ftype.split("|")[0].strip().startswith("tuple"):
                kwargs[k] = tuple(x for x in v.split(",") if x)
            else:
                kwargs[k] = _coerce(v)
        if site and "site" in known:
            kwargs["site"] = site
        if "policy" in known and "policy" not in kwargs:
            kwargs["policy"] = self.policy
        try:
            return engine.ScanOptions(**kwargs)
        except (TypeError, ValueError) as exc:
            raise CamsweepError(f"bad scan options: {exc}") from None

    def start_scan(self, targets: list[str], options: dict[str, str], site: str | None) -> None:
        from scanner import engine

        try:
            opts = self.build_scan_options(engine, options, site)
        except CamsweepError as exc:
            self.notify(str(exc), severity="error", timeout=10)
            return
        _start_resource_tracker()
        self.scanning = True
        self.progress = "scan starting"
        self.update_counts()
        self.run_scan(engine, targets, opts)

    @work(thread=True, exclusive=True, group="scan")
    def run_scan(self, engine: Any, targets: list[str], opts: Any) -> None:
        store = self.store.reopen() if self.store else Store(self.db_path)  # its own connection in this thread
        scan_id: int | None = None
        error: str | None = None

        def on_event(ev: ScanEvent) -> None:
            self.call_from_thread(self._scan_event, ev)

        try:
            scan_id = asyncio.run(engine.run_scan(targets, opts, store, on_event=on_event))
        except CamsweepError as exc:
            error = str(exc)
        except Exception as exc:  # the engine failed: say so, keep the app (the traceback goes to the log)
            logging.getLogger("camsweep.tui").exception("scan failed")
            error = f"{type(exc).__name__}: {exc}"
        finally:
            store.close()
        self.call_from_thread(self.post_message, ScanFinished(scan_id, error))

    def _scan_event(self, ev: ScanEvent) -> None:
        if isinstance(ev, Progress):
            self.progress = f"scanning {ev.done}/{ev.total}"
        elif isinstance(ev, HostsFound):
            self.progress = f"scanning: {ev.count} hosts"
        elif isinstance(ev, ScanWarning):
            self.notify(clean(ev.message, 300), title="scan", severity="warning", timeout=8)
        elif isinstance(ev, Phase):
            self.progress = f"scanning: {clean(ev.name, 30)} done"
        elif isinstance(ev, DeviceIdentified):
            self._pending_rows.append(ev.as_row())
            if len(self._pending_rows) == 1:
                self.set_timer(0.3, self._flush_scan_rows)
        self.update_counts()

    def _flush_scan_rows(self) -> None:
        rows, self._pending_rows = self._pending_rows, []
        if not rows or self.catalog is None:
            return
        for d in rows:
            did = d["device_id"]
            if did in self.by_id:
                self.by_id[did].update(d)
            else:
                self.by_id[did] = d
                self.devices.append(d)
            self.cells.pop(did, None)
            self.search.pop(did, None)
            saved = self.store.plan(did) if self.store else None
            if planlib.needs_plan(self.by_id[did]) or saved:
                self.items[did] = planlib.build_item(self.by_id[did], saved, self.catalog, self.policy)
        self.counts = filters.count_devices(self.devices)
        self.totals = planlib.compute_totals(list(self.items.values()))
        self.apply_view()

    def on_scan_finished(self, event: ScanFinished) -> None:
        self._flush_scan_rows()
        self.scanning = False
        if event.error:
            self.progress = "scan failed"
            self.notify(f"scan failed: {event.error}", severity="error", timeout=15)
        else:
            self.progress = f"scan {event.scan_id} finished"
            self.notify(f"scan {event.scan_id} finished", timeout=5)
        self.update_counts()
        self.loaded = False  # until the reload lands (tests and the count bar wait on it)
        self.load_store()  # the store is the truth: reload it (history, first/last seen)

    # -- misc ----------------------------------------------------------------------------------------
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def on_unmount(self) -> None:
        if self.store is not None:
            try:
                self.store.close()
            except Exception:
                pass


def _start_resource_tracker() -> None:
    """The engine's worker processes need multiprocessing's resource tracker. Textual replaces sys.stderr
    with a capture whose fileno() is -1, which the tracker would pass to its child ("bad value(s) in
    fds_to_keep"); start it here once, with its stderr on /dev/null, so nothing it says lands on the screen."""
    try:
        from multiprocessing import resource_tracker
    except ImportError:
        return
    saved = sys.stderr
    try:
        with open(os.devnull, "w") as devnull:
            sys.stderr = devnull
            resource_tracker.ensure_running()
    except Exception:  # no tracker: the engine reports its own error
        logging.getLogger("camsweep.tui").debug("resource tracker not started", exc_info=True)
    finally:
        sys.stderr = saved


def _coerce(v: str) -> Any:
    low = v.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    try:
        return int(v)
    except ValueError:
        pass
    try:
        return float(v)
    except ValueError:
        return v


def run(db_path: str | Path | None = None, *, policy: str | None = None,
        catalog_path: str | Path | None = None) -> None:
    CamsweepApp(db_path, policy=policy, catalog_path=catalog_path).run()
