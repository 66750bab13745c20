"""Screens: devices (table, filter bar, count bar, plan panel), device detail, plan editor, scan dialog, help.

Screens read the app's view state (tui.state.ViewState) and ask for changes with the messages of
tui/messages.py; the app handles them (and calls scanner/). No screen imports the app."""

from __future__ import annotations

from typing import Any, TypeVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Input,
    Label,
    Select,
    Static,
    TabbedContent,
    TabPane,
    TextArea,
)

from scanner.plan import STATUSES
from tui.messages import (
    DeviceHighlighted,
    FilterChanged,
    NoteSaveRequested,
    PlanEditRequested,
    PlanSaveRequested,
    RestrictedOnlyToggled,
)
from tui.state import ViewState
from tui.widgets import Column, CountBar, DeviceTable, PlanPanel, clean, plain

ResultT = TypeVar("ResultT")

COLUMNS = (
    Column("restricted", "Rst", 3, 3),
    Column("ip", "IP", 15, 8),
    Column("maker", "Brand -> maker", 22, 8),
    Column("model", "Model", 16, 5),
    Column("plan", "Plan", 10, 4),
    Column("type", "Type", 8, 4),
    Column("lists", "Lists", 28, 5),
    Column("mac", "MAC", 17, 3),
    Column("site", "Site", 18, 4),
    Column("brand", "Brand", 16, 5),
    Column("first", "First seen", 16, 10),
    Column("last", "Last seen", 16, 9),
)


class DevicesScreen(Screen[None]):
    """The main view: count bar, filter bar, the devices table and the plan side panel. It shows ``view``
    (the app's :class:`ViewState`); the table's sort requests and selections bubble up to the app."""

    BINDINGS = [
        Binding("slash", "focus_filter", "Filter"),
        Binding("r", "toggle_restricted", "Restricted only"),
        Binding("e", "edit_plan", "Plan"),
        Binding("p", "toggle_panel", "Panel"),
        Binding("m", "same('maker')", "Same maker", show=False),
        Binding("u", "same('subnet')", "Same subnet", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self, view: ViewState) -> None:
        super().__init__()
        self.view = view
        self.panel_forced = False  # p was pressed: the panel stays as the user left it
        self._panel_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield CountBar("Loading the store...", id="counts")
        with Horizontal(id="filterbar"):
            yield Input(placeholder="/ filter: words, maker:hik subnet:198.18.1.0/24 type:nvr site:HQ",
                        id="filter", compact=True)
            yield Static("", id="flags")
        with Horizontal(id="main"):
            yield DeviceTable(COLUMNS, id="devices")
            yield PlanPanel("", id="planpanel")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DeviceTable).focus()
        self.update_flags()

    def on_resize(self) -> None:
        # below 100 columns the table needs the room: the count bar still shows the plan total, p shows the panel
        if not self.panel_forced:
            self.query_one(PlanPanel).display = self.size.width >= 100

    def update_flags(self) -> None:
        t = Text(no_wrap=True)
        on_ = self.view.restricted_only
        t.append(" r ", "reverse")
        t.append(" restricted only " + ("ON" if on_ else "off"), "bold red" if on_ else "dim")
        self.query_one("#flags", Static).update(t)

    # -- showing the view (the app calls these after it changed the view state) -------------------------
    def show_rows(self, keys: list[int]) -> None:
        """The rows that pass the filter, in order; the count bar, the flags and the panel follow."""
        table = self.query_one(DeviceTable)
        table.sort_key, table.sort_reverse = self.view.sort_key, self.view.sort_reverse
        table.set_rows(keys, self.view.cells_for)
        self.update_flags()
        self.show_counts()
        self.show_panel(table.current_key)

    def update_row(self, device_id: int) -> None:
        self.query_one(DeviceTable).update_row(device_id)

    def show_counts(self) -> None:
        v = self.view
        o = v.totals.overall if v.totals else None
        self.query_one(CountBar).show(
            devices=v.counts.devices, restricted=v.counts.restricted, unknown=v.counts.unknown,
            review=v.counts.review, sites=v.site_count, shown=v.shown, total=o.total if o else None,
            remaining=o.remaining if o else None, currency=v.currency, policy=v.policy, progress=v.progress)

    def show_panel(self, device_id: int | None) -> None:
        v = self.view
        self.query_one(PlanPanel).show(v.items.get(device_id) if device_id is not None else None,
                                       v.by_id.get(device_id) if device_id is not None else None, v.totals,
                                       v.currency)

    def show_error(self, message: str) -> None:
        self.query_one(CountBar).update(Text(clean(message, 300), "bold red"))

    # -- actions -------------------------------------------------------------------------------
    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_toggle_restricted(self) -> None:
        self.post_message(RestrictedOnlyToggled())

    def action_clear_filter(self) -> None:
        inp = self.query_one("#filter", Input)
        if inp.value:
            inp.value = ""
            self.post_message(FilterChanged("", at_once=True))
        self.query_one(DeviceTable).focus()

    def action_edit_plan(self) -> None:
        key = self.query_one(DeviceTable).current_key
        if key is not None:
            self.post_message(PlanEditRequested(key))

    def action_same(self, what: str) -> None:
        """Filter to the highlighted device's maker (m) or subnet (u)."""
        key = self.query_one(DeviceTable).current_key
        d = self.view.by_id.get(key) if key is not None else None
        if d is None:
            return
        from scanner.plan import site_of

        if what == "maker":
            name = (d.get("manufacturer") or d.get("brand") or "").split()
            term = f"maker:{name[0].lower()}" if name else ""
        else:
            net = site_of({"ip": d.get("ip"), "parent_ip": d.get("parent_ip")})
            term = f"subnet:{net}" if "/" in net else ""
        if term:
            self.query_one("#filter", Input).value = term
            self.post_message(FilterChanged(term, at_once=True))

    def action_toggle_panel(self) -> None:
        panel = self.query_one(PlanPanel)
        panel.display = not panel.display
        self.panel_forced = True

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.post_message(FilterChanged(event.value))

    @on(Input.Submitted, "#filter")
    def filter_submitted(self, event: Input.Submitted) -> None:
        self.post_message(FilterChanged(event.value, at_once=True))
        self.query_one(DeviceTable).focus()

    @on(DeviceHighlighted)
    def highlighted(self, event: DeviceHighlighted) -> None:
        # while keys repeat, draw the panel once the cursor rests (keeps scrolling smooth)
        if self._panel_timer is not None:
            self._panel_timer.stop()
        self._panel_timer = self.set_timer(0.06, lambda: self.show_panel(event.device_id))


class DeviceScreen(Screen[None]):
    """One device: every piece of evidence with the rule that read it, its history, notes (kept by MAC)."""

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("e", "edit_plan", "Plan"),
        Binding("ctrl+s", "save_note", "Save note"),
        Binding("1", "tab('evidence')", "Evidence", show=False),
        Binding("2", "tab('history')", "History", show=False),
        Binding("3", "tab('notes')", "Notes", show=False),
    ]

    def __init__(self, device: dict[str, Any], history: list[dict[str, Any]], note: str,
                 reasons: tuple[str, ...], item: Any = None, currency: str = "USD") -> None:
        super().__init__()
        self.item = item
        self.currency = currency
        self.device = device
        self.history = history
        self.note_text = note
        self.reasons = reasons

    def header(self) -> Text:
        d = self.device
        from scanner.filters import brand_display

        t = Text(no_wrap=False)
        r = d.get("restricted")
        t.append(" RESTRICTED " if r is True else " not restricted " if r is False else " maker unknown ",
                 "bold white on red" if r is True else "bold black on green" if r is False else "bold black on yellow")
        t.append(f"  {clean(d.get('ip'), 40)}  {clean(d.get('mac'), 20)}\n", "bold")
        t.append("Maker ", "dim")
        t.append(clean(d.get("manufacturer") or "unknown", 40))
        t.append("  Brand ", "dim")
        t.append(clean(brand_display(d.get("brand"), d.get("manufacturer")) or "-", 60))
        t.append("  Model ", "dim")
        t.append(clean(d.get("model") or "-", 60))
        t.append("  Type ", "dim")
        t.append(clean(d.get("device_type") or "-", 20))
        t.append("\nLists ", "dim")
        t.append(clean(", ".join(d.get("lists") or []) or "-", 120))
        t.append("  Confidence ", "dim")
        t.append(f"{(d.get('confidence') or 0):.2f}")
        t.append("  Firmware ", "dim")
        t.append(clean(d.get("firmware") or "-", 60))
        for f in d.get("flags") or ():  # why flagged: law, government policy or due diligence, and its sources
            t.append("\nWhy ", "dim")
            t.append(f" {f.get('basis_text')} ", "bold white on red" if f.get("basis") == "law" else
                     "bold black on yellow" if f.get("basis") == "policy" else "bold white on magenta")
            ev = "; ".join(f"{e.get('kind')} {e.get('date')}" for e in f.get("evidence") or ())
            cite = (f.get("cite") or [""])[0]
            t.append(clean(f" {f.get('list')}: {f.get('why')}" + (f" ({ev})" if ev else "") + (f" - {cite}" if cite
                                                                                                 else ""), 400))
        t.append("\nSite ", "dim")
        from scanner.plan import site_of

        t.append(clean(site_of(d), 40))
        t.append("  First seen ", "dim")
        t.append(clean((d.get("first_seen") or "")[:16], 20))
        t.append("  Last seen ", "dim")
        t.append(clean((d.get("last_seen") or "")[:16], 20))
        if self.reasons:
            t.append("\nPriority ", "dim")
            t.append(clean("; ".join(self.reasons), 200))
        it = self.item
        if it is not None:
            t.append("\nPlan ", "dim")
            t.append(f"{it.tier} {it.status}", "bold")
            t.append(clean(f"  {it.class_label} -> {it.suggested_maker or '-'} {it.suggested_model or ''}  "
                           f"{self.currency} {it.cost_total:,.0f}", 120))
        return t

    def set_item(self, item: Any) -> None:
        self.item = item
        self.reasons = item.reasons
        self.query_one("#devhead", Static).update(self.header())

    def compose(self) -> ComposeResult:
        yield Static(self.header(), id="devhead")
        with TabbedContent(initial="evidence", id="devtabs"):
            with TabPane("Evidence [1]", id="evidence"):
                yield DataTable(id="evtable", cursor_type="row", zebra_stripes=True)
            with TabPane("History [2]", id="history"):
                yield DataTable(id="histtable", cursor_type="row", zebra_stripes=True)
            with TabPane("Notes [3]", id="notes"):
                yield Label("Notes follow the device by its MAC. ctrl+s saves.", classes="hint")
                yield TextArea(self.note_text, id="note")
        yield Footer()

    def on_mount(self) -> None:
        ev = self.query_one("#evtable", DataTable)
        ev.add_columns("Strength", "Rule", "Field", "Value")
        hits = self.device.get("evidence") or []
        for h in hits:
            if not isinstance(h, dict):
                continue
            st = str(h.get("strength") or "")
            style = {"proof": "bold red", "strong": "red", "medium": "yellow", "weak": "dim", "hint": "dim"}.get(st, "")
            ev.add_row(plain(st, 10, style), plain(h.get("rule"), 60), plain(h.get("field"), 40),
                       plain(h.get("value"), 120))
        if not hits:
            ev.add_row(plain("-"), plain("no rule fired: the maker is not established", 80), plain(""), plain(""))
        hist = self.query_one("#histtable", DataTable)
        hist.add_columns("Scan", "Started", "IP", "Maker", "Model", "Firmware", "Restricted")
        for h in self.history:
            r = h.get("restricted")
            hist.add_row(plain(h.get("scan_id")), plain((h.get("started_at") or "")[:19]), plain(h.get("ip")),
                         plain(h.get("manufacturer") or "?"), plain(h.get("model") or "-", 40),
                         plain(h.get("firmware") or "-", 40),
                         plain("yes" if r is True else "no" if r is False else "?",
                               style="bold red" if r is True else ""))
        ev.focus()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    @on(TabbedContent.TabActivated)
    def tab_activated(self, event: TabbedContent.TabActivated) -> None:
        target = {"evidence": "#evtable", "history": "#histtable", "notes": "#note"}.get(event.pane.id or "")
        if target:
            self.query_one(target).focus()

    def action_edit_plan(self) -> None:
        self.post_message(PlanEditRequested(self.device["device_id"]))

    def action_save_note(self) -> None:
        self.post_message(NoteSaveRequested(self.device, self.query_one("#note", TextArea).text))


class Dialog(ModalScreen[ResultT]):
    """A modal form with a primary button and Cancel; escape or Cancel dismisses it with None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    @staticmethod
    def buttons(label: str, button_id: str) -> Horizontal:
        return Horizontal(Button(label, variant="primary", id=button_id, compact=True),
                          Button("Cancel", id="cancel", compact=True), id="pbuttons")

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class PlanEditor(Dialog[Any]):
    """Edit one device's replacement: class, model (catalog, filtered by policy), status, costs, role."""

    BINDINGS = [Binding("ctrl+s", "save", "Save")]

    def __init__(self, item: Any, classes: list[tuple[str, str]], models_for: Any, currency: str,
                 costs_for: Any = None) -> None:
        super().__init__()
        self.item = item
        self.costs_for = costs_for  # (class, "maker\tmodel") -> (hardware, labour, licence) defaults
        self.class_options = classes
        self.models_for = models_for  # class key -> list of (label, "maker\tmodel")
        self.currency = currency

    def _model_options(self, cls: str) -> list[tuple[str, str]]:
        return self.models_for(cls) or [("(no catalog model)", "")]

    def compose(self) -> ComposeResult:
        it = self.item
        with Vertical(id="dialog"):
            yield Static(plain(f"Plan for {it.ip or '-'}  {it.brand or it.manufacturer or ''} {it.model or ''}", 90,
                               "bold"), id="ptitle")
            with Grid(id="pgrid"):
                yield Label("Class")
                yield Select([(label, key) for key, label in self.class_options], value=it.replacement_class,
                             allow_blank=False, id="cls", compact=True)
                yield Label("Model")
                opts = self._model_options(it.replacement_class)
                cur = f"{it.suggested_maker}\t{it.suggested_model}" if it.suggested_model else ""
                if cur and cur not in [v for _, v in opts]:
                    opts = [(clean(f"{it.suggested_maker or ''} {it.suggested_model}", 60), cur), *opts]
                yield Select(opts, value=cur if cur else opts[0][1], allow_blank=False, id="model",
                             compact=True)
                yield Label("Status")
                yield Select([(s, s) for s in STATUSES], value=it.status,
                             allow_blank=False, id="status", compact=True)
                yield Label("Exempt why")
                yield Input(it.exempt_reason or "", placeholder="required when exempt", id="reason",
                            compact=True)
                yield Label(f"Hardware {self.currency}")
                yield Input(f"{it.cost_hardware:.2f}", id="hw", compact=True, restrict=r"[0-9.,]*")
                yield Label(f"Labour {self.currency}")
                yield Input(f"{it.cost_labour:.2f}", id="lab", compact=True, restrict=r"[0-9.,]*")
                yield Label(f"Licence {self.currency}")
                yield Input(f"{it.cost_licence:.2f}", id="lic", compact=True, restrict=r"[0-9.,]*")
                yield Label("Public safety")
                yield Select([("no", "no"), ("yes: a public-safety role (raises priority)", "yes")],
                             value="yes" if it.public_safety else "no", allow_blank=False, id="ps", compact=True)
            yield Static("", id="perror")
            yield self.buttons("Save", "save")

    _ready = False

    AUTO_FOCUS = "#status"

    def on_mount(self) -> None:
        # Select.Changed messages from setting the initial values arrive first; only later ones are the user's
        self.call_after_refresh(self._set_ready)

    def _set_ready(self) -> None:
        self._ready = True

    @on(Select.Changed, "#cls")
    def class_changed(self, event: Select.Changed) -> None:
        if not self._ready or (str(event.value) == self.item.replacement_class and not self._class_touched):
            return
        self._class_touched = True
        model = self.query_one("#model", Select)
        opts = self._model_options(str(event.value))
        model.set_options(opts)
        model.value = opts[0][1]
        self._fill_costs(str(event.value), opts[0][1], labour=True)

    @on(Select.Changed, "#model")
    def model_changed(self, event: Select.Changed) -> None:
        if not self._ready:
            return
        it = self.item
        cur = f"{it.suggested_maker}\t{it.suggested_model}" if it.suggested_model else ""
        if str(event.value or "") != cur or self._class_touched:
            self._fill_costs(str(self.query_one("#cls", Select).value), str(event.value or ""), labour=False)

    _class_touched = False

    def _fill_costs(self, cls: str, model: str, *, labour: bool) -> None:
        if self.costs_for is None:
            return
        hw, lab, lic = self.costs_for(cls, model)
        self.query_one("#hw", Input).value = f"{hw:.2f}"
        self.query_one("#lic", Input).value = f"{lic:.2f}"
        if labour:
            self.query_one("#lab", Input).value = f"{lab:.2f}"

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        cls = str(self.query_one("#cls", Select).value)
        mm = str(self.query_one("#model", Select).value or "")
        maker, _, model = mm.partition("\t")
        changes: dict[str, Any] = {
            "status": str(self.query_one("#status", Select).value),
            "exempt_reason": self.query_one("#reason", Input).value,
            "public_safety": self.query_one("#ps", Select).value == "yes",
            "cost_hardware": self.query_one("#hw", Input).value,
            "cost_labour": self.query_one("#lab", Input).value,
            "cost_licence": self.query_one("#lic", Input).value,
        }
        if cls != self.item.replacement_class:
            changes["replacement_class"] = cls
        if model != (self.item.suggested_model or "") or maker != (self.item.suggested_maker or ""):
            changes["suggested_maker"] = maker or None
            changes["suggested_model"] = model or None
        self.post_message(PlanSaveRequested(self, self.item, changes))

    def saved(self, error: str | None) -> None:
        """The app's answer to the save: an error stays on the form, otherwise it closes."""
        if error:
            self.query_one("#perror", Static).update(plain(error, 200, "bold red"))
        else:
            self.dismiss(True)


class ScanDialog(Dialog[dict[str, Any] | None]):
    """Targets and options for a scan run from the TUI."""

    AUTO_FOCUS = "#targets"

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text("New scan", "bold"))
            yield Static(Text("Only the networks you name are scanned.", "dim"))
            with Grid(id="sgrid"):
                yield Label("Targets")
                yield Input(placeholder="e.g. 198.18.0.0/24 198.18.1.10-20", id="targets", compact=True)
                yield Label("Site")
                yield Input(placeholder="optional site name", id="site", compact=True)
                yield Label("Options")
                yield Input(placeholder="key=value ... (e.g. timeout=2 rate=200)", id="options", compact=True)
            yield Static("", id="serror")
            yield self.buttons("Start", "start")

    @on(Input.Submitted)
    @on(Button.Pressed, "#start")
    def start(self) -> None:
        targets = self.query_one("#targets", Input).value.replace(",", " ").split()
        if not targets:
            self.query_one("#serror", Static).update(Text("Name at least one target.", "bold red"))
            return
        options: dict[str, str] = {}
        for tok in self.query_one("#options", Input).value.split():
            k, sep, v = tok.partition("=")
            if not sep or not k:
                self.query_one("#serror", Static).update(plain(f"option {tok!r} is not key=value", 80, "bold red"))
                return
            options[k] = v
        site = self.query_one("#site", Input).value.strip() or None
        self.dismiss({"targets": targets, "options": options, "site": site})


HELP = """\
camsweep: keys (mouse works too: click a row, double-click to open,
click a column header to sort)

Devices view
  up/down j/k PgUp PgDn Home End   move
  enter                            open the device: evidence, history, notes
  /                                filter: words, maker:NAME, subnet:CIDR,
                                   type:nvr, site:NAME, status:exempt
  r                                restricted devices only (on/off)
  m  u                             same maker / same subnet as the row
  s  S                             sort by the next column / reverse it
  left/right h/l                   scroll the columns
  e                                edit the device's replacement plan
  p                                show/hide the plan panel
  escape                           clear the filter
Device view
  1 2 3                            evidence / history / notes
  ctrl+s                           save the note (kept by MAC)
  e  escape                        edit the plan / back
Plan editor
  tab shift+tab                    next / previous field
  ctrl+s  escape                   save / cancel
Everywhere
  n  new scan      x  export the plan (CSV and JSON)
  d  dark/light    ?  this help    q  quit
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(Text(HELP))

    def action_close(self) -> None:
        self.dismiss(None)


class ExportDialog(Dialog[str | None]):
    AUTO_FOCUS = "#path"

    def __init__(self, default: str) -> None:
        super().__init__()
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text("Export the plan", "bold"))
            yield Static(Text("Writes PATH.csv and PATH.json", "dim"))
            yield Input(self.default, id="path", compact=True)
            yield self.buttons("Export", "go")

    @on(Input.Submitted)
    @on(Button.Pressed, "#go")
    def go(self) -> None:
        v = self.query_one("#path", Input).value.strip()
        self.dismiss(v or None)


__all__ = ["DevicesScreen", "DeviceScreen", "PlanEditor", "ScanDialog", "HelpScreen", "ExportDialog"]
