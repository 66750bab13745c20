"""The TUI's view state: what was loaded from the store and how the user is looking at it.

The app owns one :class:`ViewState` and is the only one that changes it (when it loads the store, when a
scan reports devices, and when a screen asks with a message from tui/messages.py); screens read it to show
it. What it decides is decided in scanner/ (filters for the filter language and the counts, plan.py for
plans and totals); this module only keeps the values and the caches that go with them in step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scanner import filters
from scanner import plan as planlib
from scanner.ipkey import ip_key
from scanner.store import Store
from tui.widgets import Cell, device_cells

Device = dict[str, Any]

SORTS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
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


@dataclass(eq=False)
class ViewState:
    """Loaded data (devices, plan items and totals, counts, catalog, policy), the view's choices (filter
    text, restricted only, sort) and what the count bar says (rows shown, scan progress)."""

    policy: str
    catalog: planlib.Catalog | None = None
    devices: list[Device] = field(default_factory=list)
    by_id: dict[int, Device] = field(default_factory=dict)
    items: dict[int, planlib.PlanItem] = field(default_factory=dict)
    totals: planlib.PlanTotals | None = None
    counts: filters.DeviceCounts = field(default_factory=lambda: filters.DeviceCounts(0, 0, 0))
    site_count: int = 0  # sites among the devices (a central store holds many)
    filter_text: str = ""
    restricted_only: bool = False
    sort_key: str | None = None
    sort_reverse: bool = False
    shown: int = 0  # rows that pass the filter
    progress: str = ""  # the scan's progress, for the count bar
    # caches, dropped with the rows they were made from: the filter bar's search text, the table's cells
    search: dict[int, str] = field(default_factory=dict)
    cells: dict[int, list[Cell]] = field(default_factory=dict)

    @property
    def currency(self) -> str:
        return self.catalog.currency if self.catalog else "USD"

    # -- changes (the app makes them) ---------------------------------------------------------------
    def load(self, devices: list[Device], plan: planlib.Plan, *, complete: bool,
             search: dict[int, str] | None = None) -> None:
        """The devices and plan read from the store (``complete``: all of them, not the restricted first)."""
        self.devices = devices
        self.by_id = {d["device_id"]: d for d in devices}
        self.items = {it.device_id: it for it in plan.items}
        self.totals = plan.totals
        counts = filters.count_devices(devices)
        self.site_count = len({d.get("site") for d in devices if d.get("site")})
        self.counts = counts if complete else filters.DeviceCounts(-1, counts.restricted, -1, counts.review)
        self.search = search or {}
        self.cells = {}

    def set_item(self, item: planlib.PlanItem) -> None:
        """A saved plan item: it and the totals change, its row is drawn again."""
        self.items[item.device_id] = item
        self.totals = planlib.compute_totals(list(self.items.values()))
        self.cells.pop(item.device_id, None)

    def merge_rows(self, rows: list[Device], saved_plan: Callable[[int], Mapping[str, Any] | None]) -> None:
        """Devices a running scan identified: new ones added, known ones updated, their plans rebuilt
        (``saved_plan(device_id)``: what the store holds for it)."""
        if self.catalog is None:
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
            saved = saved_plan(did)
            if planlib.needs_plan(self.by_id[did]) or saved:
                self.items[did] = planlib.build_item(self.by_id[did], saved, self.catalog, self.policy)
        self.counts = filters.count_devices(self.devices)
        self.totals = planlib.compute_totals(list(self.items.values()))

    def set_note(self, key: str, text: str) -> None:
        """A note saved under ``key`` (Store.note_key): every row with that key carries it (and is searched
        by it)."""
        for d in self.devices:  # the same MAC may be several rows only across stores; keep all in step
            if Store.note_key(d.get("mac"), d["device_id"]) == key:
                d["note"] = text
                self.search.pop(d["device_id"], None)

    # -- what is shown ---------------------------------------------------------------------------------
    def visible_rows(self) -> tuple[list[Device], list[str]]:
        """The devices that pass the filter, in the chosen order; and what was wrong with the filter."""
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
        if self.sort_key in SORTS:
            rows = sorted(rows, key=SORTS[self.sort_key], reverse=self.sort_reverse)
        elif self.sort_key == "plan":
            rows = sorted(rows, key=lambda d: -(self.items[d["device_id"]].priority
                                                if d["device_id"] in self.items else -1),
                          reverse=self.sort_reverse)
        return rows, list(f.errors)

    def cells_for(self, device_id: int) -> list[Cell]:
        """The table cells of a device (kept until its row or plan changes)."""
        c = self.cells.get(device_id)
        if c is None:
            d = self.by_id.get(device_id)
            if d is None:
                return [("", "")] * 12
            c = self.cells[device_id] = device_cells(d, self.items.get(device_id))
        return c

    def plan_item(self, device_id: int) -> planlib.PlanItem | None:
        """The device's plan item, or the one plan.py would make for it (``e`` plans any device)."""
        it = self.items.get(device_id)
        if it is None and device_id in self.by_id and self.catalog is not None:
            it = planlib.build_item(self.by_id[device_id], None, self.catalog, self.policy)
        return it
