"""The camsweep Textual app: composes the screens, owns the view state (tui/state.py), runs workers.

Everything it decides is decided in scanner/ (store queries, plan.py for plans, filters and totals,
engine.run_scan for scans); the app only moves values between the core and the screens. Screens ask for
changes with the messages of tui/messages.py; the app's ``on_*`` handlers below make them.
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

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.timer import Timer

from scanner import filters
from scanner import plan as planlib
from scanner.errors import CamsweepError
from scanner.events import DeviceIdentified, HostsFound, Phase, Progress, ScanEvent, ScanWarning
from scanner.store import Store
from tui.messages import (
    DeviceSelected,
    FilterChanged,
    NoteSaveRequested,
    PlanChanged,
    PlanEditRequested,
    PlanSaveRequested,
    RestrictedOnlyToggled,
    ScanFinished,
    SortRequested,
)
from tui.screens import DeviceScreen, DevicesScreen, ExportDialog, HelpScreen, PlanEditor, ScanDialog
from tui.state import ViewState
from tui.widgets import DeviceTable, clean


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
        self.view = ViewState(policy=policy or planlib.DEFAULT_POLICY)  # the screens read it; only the app sets it
        self.loaded = False
        self.load_seconds: float | None = None
        self.first_seconds: float | None = None
        self.first_paint = False
        self.scanning = False
        self._view_timer: Timer | None = None
        self._pending_rows: list[dict[str, Any]] = []
        self._t0 = time.perf_counter()

    # -- start ------------------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.push_screen(DevicesScreen(self.view))
        try:
            self.store = Store(self.db_path)
            self.view.catalog = planlib.load_catalog(self.catalog_path)
        except CamsweepError as exc:
            self.notify(str(exc), title="cannot open", severity="error", timeout=30)
            self.call_after_refresh(self._show_error, f"error: {exc}")
            return
        if not self.policy_arg:
            sid = self.store.latest_scan_id()
            if sid:
                self.view.policy = self.store.scan(sid).policy or planlib.DEFAULT_POLICY
        self.load_store()

    @work(thread=True, exclusive=True, group="load")
    def load_store(self) -> None:
        """Restricted devices and their plan first (what a user opens the app for), then everything."""
        view = self.view
        assert self.store is not None and view.catalog is not None
        try:
            first = self.store.devices(restricted_only=True)
            # what the policy restricts is fingerprints.policy's one decision (plan asks it)
            plan = planlib.make_plan(self.store, policy=view.policy, catalog=view.catalog, devices=first)
            if not self.loaded:
                painted = threading.Event()
                self.call_from_thread(self._loaded, first, plan, False, None, painted)
                painted.wait(2.0)  # let the first screen draw before the rest competes for the GIL
            devices = self.store.devices()
            if self.policy_arg:  # --policy: restriction re-evaluated under it (stored rows: the scan's own)
                from scanner.policyview import apply_policy

                apply_policy(devices, view.policy)
            plan = planlib.make_plan(self.store, policy=view.policy, catalog=view.catalog, devices=devices)
        except Exception as exc:  # a damaged store: a message, not a traceback
            self.call_from_thread(self.notify, f"cannot read the store: {exc}", severity="error", timeout=30)
            return
        search = {d["device_id"]: filters.search_text(d) for d in devices}  # for the filter bar, off the UI
        self.call_from_thread(self._loaded, devices, plan, True, search)

    def _loaded(self, devices: list[dict[str, Any]], plan: planlib.Plan, complete: bool = True,
                search: dict[int, str] | None = None, painted: threading.Event | None = None) -> None:
        self.view.load(devices, plan, complete=complete, search=search)
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
            self.screen_devices.show_error(message)
        except (LookupError, NoMatches):
            pass

    # -- the devices view ------------------------------------------------------------------------
    def schedule_view(self) -> None:
        if self._view_timer is not None:
            self._view_timer.stop()
        self._view_timer = self.set_timer(0.15, self.apply_view)

    def apply_view(self, force: bool = False) -> None:
        """Show the view state: the rows that pass the filter, in order, and the counts."""
        if not (self.loaded or force or self.first_paint):
            return
        rows, errors = self.view.visible_rows()
        try:
            screen = self.screen_devices
            screen.query_one(DeviceTable)
        except (LookupError, NoMatches):  # not composed yet
            return
        self.view.shown = len(rows)
        screen.show_rows([d["device_id"] for d in rows])
        if errors:
            self.notify("; ".join(errors), severity="warning")

    def on_filter_changed(self, event: FilterChanged) -> None:
        self.view.filter_text = event.text
        if event.at_once:
            self.apply_view()
        else:
            self.schedule_view()

    def on_restricted_only_toggled(self, event: RestrictedOnlyToggled) -> None:
        self.view.restricted_only = not self.view.restricted_only
        self.apply_view()
        try:
            self.screen_devices.update_flags()  # even before the store has loaded
        except (LookupError, NoMatches):
            pass

    def on_sort_requested(self, event: SortRequested) -> None:
        self.view.sort_key, self.view.sort_reverse = event.key, event.reverse
        self.apply_view()

    @property
    def screen_devices(self) -> DevicesScreen:
        for s in self.screen_stack:
            if isinstance(s, DevicesScreen):
                return s
        raise LookupError("no devices screen")

    def update_counts(self) -> None:
        try:
            self.screen_devices.show_counts()
        except (LookupError, NoMatches):
            return

    # -- device detail, notes -------------------------------------------------------------------
    def on_device_selected(self, event: DeviceSelected) -> None:
        self.open_device(event.device_id)

    def open_device(self, device_id: int) -> None:
        view = self.view
        d = view.by_id.get(device_id)
        if d is None or self.store is None:
            return
        history = self.store.device_history(device_id)
        note = self.store.note(Store.note_key(d.get("mac"), device_id))
        it = view.items.get(device_id)
        reasons = it.reasons if it else planlib.score_priority(d).reasons
        try:  # why it is flagged under the policy: law, government policy or due diligence, with citations
            from scanner.policyview import annotate

            annotate([d], view.policy)
        except Exception as exc:
            self.log(f"camsweep: why-flagged reasons unavailable: {exc}")
        self.push_screen(DeviceScreen(d, history, note, reasons, it, view.currency))

    def on_note_save_requested(self, event: NoteSaveRequested) -> None:
        self.save_note(event.device, event.text)

    def save_note(self, device: dict[str, Any], text: str) -> None:
        if self.store is None:
            return
        if len(text) > 20_000:
            self.notify("the note is longer than 20,000 characters", severity="error")
            return
        key = Store.note_key(device.get("mac"), device["device_id"])
        self.store.set_note(key, text)
        self.view.set_note(key, text)
        self.notify("note saved" + (f" for {device.get('mac')}" if device.get("mac") else ""))

    # -- plans -------------------------------------------------------------------------------------
    def models_for(self, cls: str) -> list[tuple[str, str]]:
        assert self.view.catalog is not None
        return [(f"{m.maker} {m.model}", f"{m.maker}\t{m.model}")
                for m in planlib.suggest_models(self.view.catalog, cls, self.view.policy)]

    def on_plan_edit_requested(self, event: PlanEditRequested) -> None:
        self.open_plan_editor(event.device_id)

    def open_plan_editor(self, device_id: int) -> None:
        catalog = self.view.catalog
        it = self.view.plan_item(device_id)
        if it is None or catalog is None:
            return
        classes = [(k, c.label) for k, c in catalog.classes.items()]
        self.push_screen(PlanEditor(it, classes, self.models_for, catalog.currency, self.costs_for))

    def costs_for(self, cls: str, maker_model: str) -> tuple[float, float, float]:
        catalog = self.view.catalog
        assert catalog is not None
        _maker, _, model = maker_model.partition("\t")
        chosen = next((m for m in catalog.cls(cls).models if m.model == model), None)
        return planlib.default_costs(catalog, cls, chosen)

    def on_plan_save_requested(self, event: PlanSaveRequested) -> None:
        event.editor.saved(self.save_plan_changes(event.item, event.changes))

    def save_plan_changes(self, item: planlib.PlanItem, changes: dict[str, Any]) -> str | None:
        """Save through plan.py; returns an error message for the editor, or None."""
        view = self.view
        if self.store is None or view.catalog is None:
            return "no store"
        try:
            new = planlib.save_item(self.store, item, view.catalog, view.policy, **changes)
        except CamsweepError as exc:
            return str(exc)
        view.set_item(new)
        try:
            screen = self.screen_devices
        except LookupError:
            pass
        else:
            screen.update_row(new.device_id)
            screen.show_counts()
            screen.show_panel(new.device_id)
        for s in self.screen_stack:
            if isinstance(s, DeviceScreen) and s.device["device_id"] == new.device_id:
                s.set_item(new)
        self.post_message(PlanChanged(new))
        return None

    def on_plan_changed(self, event: PlanChanged) -> None:
        it = event.item
        self.notify(f"plan saved: {clean(it.ip, 40)} {it.status}, {it.class_label}, "
                    f"{self.view.catalog.currency if self.view.catalog else ''} {it.cost_total:,.0f}", timeout=3)

    def export_plan(self, base: str) -> tuple[Path, Path]:
        view = self.view
        assert view.catalog is not None
        plan = planlib.Plan(items=tuple(sorted(view.items.values(), key=lambda i: (-i.priority, i.site,
                                                                                      i.ip or ""))),
                            totals=view.totals or planlib.compute_totals([]), policy=view.policy,
                            currency=view.catalog.currency, catalog_version=view.catalog.version)
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
            kwargs["policy"] = self.view.policy
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
        self.view.progress = "scan starting"
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
            self.view.progress = f"scanning {ev.done}/{ev.total}"
        elif isinstance(ev, HostsFound):
            self.view.progress = f"scanning: {ev.count} hosts"
        elif isinstance(ev, ScanWarning):
            self.notify(clean(ev.message, 300), title="scan", severity="warning", timeout=8)
        elif isinstance(ev, Phase):
            self.view.progress = f"scanning: {clean(ev.name, 30)} done"
        elif isinstance(ev, DeviceIdentified):
            self._pending_rows.append(ev.as_row())
            if len(self._pending_rows) == 1:
                self.set_timer(0.3, self._flush_scan_rows)
        self.update_counts()

    def _flush_scan_rows(self) -> None:
        rows, self._pending_rows = self._pending_rows, []
        if not rows or self.view.catalog is None:
            return
        store = self.store
        self.view.merge_rows(rows, lambda did: store.plan(did) if store else None)
        self.apply_view()

    def on_scan_finished(self, event: ScanFinished) -> None:
        self._flush_scan_rows()
        self.scanning = False
        if event.error:
            self.view.progress = "scan failed"
            self.notify(f"scan failed: {event.error}", severity="error", timeout=15)
        else:
            self.view.progress = f"scan {event.scan_id} finished"
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
