"""The TUI's state and messages: screens read the app's ViewState and ask for changes with messages; the app
makes them. Checked from both sides: a devices screen on a host that only records what it is asked (the
screen changes nothing itself), and the real app, where a message changes the view state and the rows."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from textual.app import App
from textual.message import Message

from scanner import plan as planlib
from scanner.store import Store
from tests.tui.synthetic import fill_store
from tests.tui.test_app import SIZE, screen_text, until, wait_loaded
from tui.app import CamsweepApp
from tui.messages import (
    DeviceSelected,
    FilterChanged,
    PlanEditRequested,
    RestrictedOnlyToggled,
    SortRequested,
)
from tui.screens import DevicesScreen
from tui.state import ViewState
from tui.widgets import DeviceTable

pytestmark = pytest.mark.timeout(120)


@pytest.fixture()
def db(tmp_path):
    path = tmp_path / "state.db"
    with Store(path) as s:
        fill_store(s, 60, seed=11)
    return path


def loaded_view(path: Path) -> ViewState:
    view = ViewState(policy="ndaa889", catalog=planlib.load_catalog())
    with Store(path) as s:
        devices = s.devices()
        view.load(devices, planlib.make_plan(s, policy=view.policy, catalog=view.catalog, devices=devices),
                  complete=True)
    return view


class Host(App[None]):
    """Shows a DevicesScreen over a ViewState and records the messages that reach it, changing nothing."""

    def __init__(self, view: ViewState) -> None:
        super().__init__()
        self.view = view
        self.asked: list[Message] = []

    def on_mount(self) -> None:
        screen = DevicesScreen(self.view)
        self.push_screen(screen)
        self.call_after_refresh(screen.show_rows, [d["device_id"] for d in self.view.devices])

    def on_filter_changed(self, m: FilterChanged) -> None:
        self.asked.append(m)

    def on_restricted_only_toggled(self, m: RestrictedOnlyToggled) -> None:
        self.asked.append(m)

    def on_sort_requested(self, m: SortRequested) -> None:
        self.asked.append(m)

    def on_plan_edit_requested(self, m: PlanEditRequested) -> None:
        self.asked.append(m)

    def on_device_selected(self, m: DeviceSelected) -> None:
        self.asked.append(m)


async def test_the_devices_screen_asks_with_messages_and_changes_nothing_itself(db):
    view = loaded_view(db)
    host = Host(view)
    async with host.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(host.screen.query_one(DeviceTable).keys) == 60)
        table = host.screen.query_one(DeviceTable)
        first = table.current_key
        await pilot.press("slash", *"maker:amcrest", "enter")
        await pilot.press("r", "s", "e", "enter")
        await until(pilot, lambda: any(isinstance(m, DeviceSelected) for m in host.asked))
        filters = [m for m in host.asked if isinstance(m, FilterChanged)]
        assert [m.text for m in filters if not m.at_once][-1] == "maker:amcrest"  # typed: applied when it rests
        assert [(m.text, m.at_once) for m in filters][-1] == ("maker:amcrest", True)  # enter: applied at once
        rest = [type(m) for m in host.asked if not isinstance(m, FilterChanged)]
        assert rest == [RestrictedOnlyToggled, SortRequested, PlanEditRequested, DeviceSelected]
        sort = next(m for m in host.asked if isinstance(m, SortRequested))
        assert (sort.key, sort.reverse) == ("restricted", False)
        assert next(m for m in host.asked if isinstance(m, PlanEditRequested)).device_id == first
        # the host made none of the changes, so the view state and the rows are as they were
        assert (view.filter_text, view.restricted_only, view.sort_key) == ("", False, None)
        assert len(table.keys) == 60 and table.current_key == first


async def test_a_filter_message_changes_the_view_state_and_the_rows(db):
    app = CamsweepApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        table = app.screen.query_one(DeviceTable)
        nvrs = {d["device_id"] for d in app.view.devices if d.get("device_type") == "nvr"}
        assert 0 < len(nvrs) < 60
        app.screen.post_message(FilterChanged("type:nvr", at_once=True))
        await until(pilot, lambda: app.view.filter_text == "type:nvr")
        assert set(table.keys) == nvrs and app.view.shown == len(nvrs)
        assert f"shown {len(nvrs)}" in screen_text(app)
        # while typing, the rows follow once the typing rests
        app.screen.post_message(FilterChanged("maker:amcrest"))
        await until(pilot, lambda: app.view.filter_text == "maker:amcrest")
        await until(pilot, lambda: table.keys and all(app.view.by_id[k]["brand"] == "Amcrest" for k in table.keys))
        app.screen.post_message(FilterChanged("", at_once=True))
        await until(pilot, lambda: app.view.filter_text == "")
        assert len(table.keys) == 60 and app.view.shown == 60
        # typing in the filter bar goes the same way; escape clears it
        await pilot.press("slash", *"type:nvr", "enter")
        assert app.view.filter_text == "type:nvr" and set(table.keys) == nvrs
        await pilot.press("escape")
        assert app.view.filter_text == "" and len(table.keys) == 60


async def test_restricted_only_and_sort_messages_reach_the_view_state(db):
    app = CamsweepApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        table = app.screen.query_one(DeviceTable)
        app.screen.post_message(RestrictedOnlyToggled())
        await until(pilot, lambda: app.view.restricted_only)
        assert len(table.keys) == app.view.counts.restricted == app.view.shown
        assert all(app.view.by_id[k]["restricted"] is True for k in table.keys)
        assert "restricted only ON" in screen_text(app)
        app.screen.post_message(SortRequested("ip", True))
        await until(pilot, lambda: app.view.sort_key == "ip")
        assert app.view.sort_reverse and (table.sort_key, table.sort_reverse) == ("ip", True)
        ips = [tuple(int(p) for p in app.view.by_id[k]["ip"].split(".")) for k in table.keys]
        assert ips == sorted(ips, reverse=True)
        await pilot.press("r")
        await until(pilot, lambda: not app.view.restricted_only)
        assert len(table.keys) == 60 and "restricted only off" in screen_text(app)


def test_no_tui_module_imports_the_app_and_there_is_no_cycle():
    """Every import among tui/ modules, TYPE_CHECKING ones too: only the app imports screens, none imports
    the app, and there is no cycle."""
    root = Path(__file__).resolve().parents[2] / "tui"
    graph: dict[str, set[str]] = {}
    for f in root.glob("*.py"):
        deps: set[str] = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tui."):
                deps.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                deps |= {a.name.split(".")[1] for a in node.names if a.name.startswith("tui.")}
        graph[f.stem] = deps
    assert {"app", "screens", "state", "messages", "widgets"} <= set(graph)
    assert not [m for m, deps in graph.items() if "app" in deps]
    assert [m for m, deps in graph.items() if "screens" in deps] == ["app"]

    def reaches(a: str, b: str, seen: set[str]) -> bool:
        return any(n == b or (n not in seen and not seen.add(n) and reaches(n, b, seen)) for n in graph.get(a, ()))

    assert not [m for m in graph if reaches(m, m, set())]


def test_view_state_rows_follow_its_filter_sort_and_saved_items(db):
    """ViewState alone: the rows follow the filter text, restricted only and sort; a saved item changes the
    totals and the row's cells (the cached ones are dropped)."""
    view = loaded_view(db)
    rows, errors = view.visible_rows()
    assert len(rows) == 60 and not errors
    view.filter_text = "maker:amcrest"
    rows, _ = view.visible_rows()
    assert rows and all(d["brand"] == "Amcrest" for d in rows)
    view.filter_text, view.restricted_only, view.sort_key = "", True, "ip"
    rows, _ = view.visible_rows()
    assert len(rows) == view.counts.restricted and all(d["restricted"] is True for d in rows)
    ips = [tuple(int(p) for p in d["ip"].split(".")) for d in rows]
    assert ips == sorted(ips)
    view.filter_text = "subnet:198.18.999.0/24"
    assert view.visible_rows()[1] == ["not a subnet: 198.18.999.0/24"]
    did = rows[0]["device_id"]
    before = view.totals.overall.total
    assert view.cells_for(did)[4][0] == f"{view.items[did].tier} planned"
    from dataclasses import replace

    view.set_item(replace(view.items[did], status="exempt", exempt_reason="test"))
    assert view.cells_for(did)[4][0].endswith("exempt")
    assert view.totals.overall.total == pytest.approx(before - view.items[did].cost_total)
