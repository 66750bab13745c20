"""Presentational widgets. They show what they are given and announce what happened (past-tense messages);
they hold no scan, store or plan logic (that is in scanner/)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from scanner.devtext import shown
from scanner.filters import brand_display
from scanner.plan import site_of
from tui.messages import DeviceHighlighted, DeviceSelected, SortRequested


def clean(value: Any, limit: int = 200) -> str:
    """Text safe to put on a terminal (:func:`scanner.devtext.shown`: control, bidi and zero-width
    characters shown as visible escapes, never sent); cut to ``limit``."""
    if value is None:
        return ""
    return shown(value, limit)


def plain(value: Any, limit: int = 200, style: str = "") -> Text:
    """A Rich Text that is never parsed as markup."""
    return Text(clean(value, limit), style=style, no_wrap=True, overflow="ellipsis")


# --------------------------------------------------------------------------------------------
# the devices table: a virtual table (only the visible rows are rendered), so 10,000 rows load at once


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    max_width: int
    min_width: int = 3


Cell = tuple[str, str]  # text, style name ("" / "bad" / "good" / "warn" / "dim" / "relabel")


def device_cells(d: dict[str, Any], it: Any | None) -> list[Cell]:
    """The row of a device (and its plan item ``it``, if any), in the order of the devices screen's columns."""
    r = d.get("restricted")
    maker = d.get("manufacturer")
    review = d.get("review")
    suspect = f"{review.get('maker') or ''}?" if review else "?"
    shown = brand_display(d.get("brand"), maker) if maker else \
        (f"{d['brand']} -> {suspect}" if d.get("brand") else suspect)
    return [
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
        (clean(site_of(d), 40), ""),
        (clean(d.get("brand") or "", 40), "dim"),
        (clean((d.get("first_seen") or "")[:16].replace("T", " "), 20), "dim"),
        (clean((d.get("last_seen") or "")[:16].replace("T", " "), 20), "dim"),
    ]


class DeviceTable(ScrollView, can_focus=True):
    """Rows of cells; a sticky header; cursor with keys and mouse; sort by a column (click or ``s``)."""

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "jump(0)", "First", show=False),
        Binding("end,G", "jump(-1)", "Last", show=False),
        Binding("enter", "select", "Open", show=True),
        Binding("s", "cycle_sort", "Sort", show=True),
        Binding("S", "reverse_sort", "Reverse", show=False),
        Binding("left,h", "scroll_cols(-8)", "Left", show=False),
        Binding("right,l", "scroll_cols(8)", "Right", show=False),
    ]

    COMPONENT_CLASSES = {"devtable--header", "devtable--cursor", "devtable--bad", "devtable--good",
                         "devtable--warn", "devtable--dim", "devtable--relabel", "devtable--odd"}

    DEFAULT_CSS = """
    DeviceTable { height: 1fr; scrollbar-size-vertical: 1; scrollbar-size-horizontal: 1; }
    DeviceTable > .devtable--header { text-style: bold; background: $panel; color: $text; }
    DeviceTable > .devtable--cursor { background: $accent; color: $text; text-style: bold; }
    DeviceTable:blur > .devtable--cursor { background: $secondary; }
    DeviceTable > .devtable--bad { color: $text-error; text-style: bold; }
    DeviceTable > .devtable--good { color: $text-success; }
    DeviceTable > .devtable--warn { color: $text-warning; }
    DeviceTable > .devtable--dim { text-style: dim; }
    DeviceTable > .devtable--relabel { color: $text-warning; text-style: bold; }
    DeviceTable > .devtable--odd { background: $panel; }
    """

    cursor: reactive[int] = reactive(0, always_update=True, init=False)

    def __init__(self, columns: Sequence[Column], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.columns = list(columns)
        self.widths = [c.min_width for c in self.columns]
        self.keys: list[int] = []  # device id of each displayed row
        self.get_cells: Callable[[int], list[Cell]] = lambda key: []
        self.sort_key: str | None = None
        self.sort_reverse = False
        self._sort_funcs: dict[str, Callable[[int], Any]] = {}
        self._last_highlight: int | None = None
        self._styles: dict[str, Style] = {}

    # -- data ---------------------------------------------------------------------------------
    def set_rows(self, keys: list[int], get_cells: Callable[[int], list[Cell]], *,
                 keep_cursor: bool = True) -> None:
        """Replace the rows (already filtered and sorted by the caller). Cells are asked for only when a
        row is drawn (and for a sample of rows, to size the columns), so 10,000 rows cost nothing here."""
        current = self.current_key if keep_cursor else None
        self.keys = keys
        self.get_cells = get_cells
        widths = [max(cell_len(c.label) + 1, c.min_width) for c in self.columns]
        step = max(1, len(keys) // 400)
        for key in keys[::step]:
            for i, (text, _) in enumerate(get_cells(key)):
                n = len(text)
                if n > widths[i]:
                    widths[i] = min(n, self.columns[i].max_width)
        self.widths = widths
        self.virtual_size = Size(sum(widths) + len(widths), len(keys) + 1)
        new_cursor = 0
        if current is not None:
            try:
                new_cursor = keys.index(current)
            except ValueError:
                new_cursor = 0
        self._last_highlight = None
        self.cursor = min(new_cursor, max(0, len(keys) - 1))
        self.refresh()

    def update_row(self, key: int) -> None:
        """The cells of ``key`` changed (the caller's ``get_cells`` now returns the new ones)."""
        if key in self.keys:
            self.refresh()

    @property
    def current_key(self) -> int | None:
        if 0 <= self.cursor < len(self.keys):
            return self.keys[self.cursor]
        return None

    def move_to_key(self, key: int) -> bool:
        try:
            self.cursor = self.keys.index(key)
            return True
        except ValueError:
            return False

    # -- cursor ---------------------------------------------------------------------------------
    def watch_cursor(self, old: int, new: int) -> None:
        body = max(1, self.size.height - 1)
        y = int(self.scroll_offset.y)
        if new < y:
            self.scroll_to(y=new, animate=False, immediate=True)
        elif new >= y + body:
            self.scroll_to(y=new - body + 1, animate=False, immediate=True)
        self.refresh()
        key = self.current_key
        if key != self._last_highlight:
            self._last_highlight = key
            self.post_message(DeviceHighlighted(key))

    def action_cursor(self, delta: int) -> None:
        if self.keys:
            self.cursor = max(0, min(len(self.keys) - 1, self.cursor + delta))

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(1, self.size.height - 2))

    def action_jump(self, where: int) -> None:
        if self.keys:
            self.cursor = 0 if where == 0 else len(self.keys) - 1

    def action_select(self) -> None:
        key = self.current_key
        if key is not None:
            self.post_message(DeviceSelected(key))

    def action_scroll_cols(self, delta: int) -> None:
        self.scroll_to(x=max(0, self.scroll_offset.x + delta), animate=False)

    def action_cycle_sort(self) -> None:
        keys = [c.key for c in self.columns]
        i = keys.index(self.sort_key) + 1 if self.sort_key in keys else 0
        self.post_message(SortRequested(keys[i % len(keys)], False))

    def action_reverse_sort(self) -> None:
        if self.sort_key:
            self.post_message(SortRequested(self.sort_key, not self.sort_reverse))

    def _column_at(self, x: int) -> str | None:
        pos = 0
        for c, w in zip(self.columns, self.widths, strict=True):
            if pos <= x < pos + w + 1:
                return c.key
            pos += w + 1
        return None

    async def on_click(self, event: events.Click) -> None:
        y = event.y
        if y == 0:
            key = self._column_at(event.x + int(self.scroll_offset.x))
            if key:
                rev = not self.sort_reverse if key == self.sort_key else False
                self.post_message(SortRequested(key, rev))
            return
        row = int(self.scroll_offset.y) + y - 1
        if 0 <= row < len(self.keys):
            self.cursor = row
            if event.chain >= 2:
                self.action_select()

    # -- rendering ---------------------------------------------------------------------------
    def _style(self, name: str) -> Style:
        st = self._styles.get(name)
        if st is None:
            st = self._styles[name] = self.get_component_rich_style(f"devtable--{name}", partial=True)
        return st

    def notify_style_update(self) -> None:
        self._styles = {}  # the theme or CSS changed
        super().notify_style_update()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = int(self.scroll_offset.x), int(self.scroll_offset.y)
        width = self.size.width
        base = self.rich_style
        if y == 0:
            hs = base + self._style("header")
            segs = []
            for c, w in zip(self.columns, self.widths, strict=True):
                label = c.label
                if c.key == self.sort_key:
                    label = label + ("▼" if self.sort_reverse else "▲")
                segs.append(Segment(set_cell_size(label, w) + " ", hs))
            return Strip(segs).crop_extend(scroll_x, scroll_x + width, hs)
        row = scroll_y + y - 1
        if row >= len(self.keys):
            return Strip.blank(width, base)
        rs = base
        if row % 2:
            rs = rs + self._style("odd")
        cursor = row == self.cursor
        if cursor:
            rs = rs + self._style("cursor")
        segs = []
        for (text, st), w in zip(self.get_cells(self.keys[row]), self.widths, strict=True):
            style = rs + self._style(st) if st else rs
            if cursor:
                style = style + self._style("cursor")
            segs.append(Segment(set_cell_size(text, w), style))
            segs.append(Segment(" ", rs))
        return Strip(segs).crop_extend(scroll_x, scroll_x + width, rs)

    def on_resize(self, event: events.Resize) -> None:
        self.refresh()


# --------------------------------------------------------------------------------------------


class CountBar(Static):
    """Devices / restricted / unknown, the plan total and scan progress, on one line."""

    DEFAULT_CSS = """
    CountBar { height: 1; background: $primary-background; color: $text; padding: 0 1; }
    """

    def show(self, *, devices: int, restricted: int, unknown: int, shown: int, total: float | None,
             remaining: float | None, currency: str, policy: str, progress: str = "", review: int = 0,
             sites: int = 0) -> None:
        t = Text(no_wrap=True, overflow="ellipsis")
        if sites > 1:
            t.append("Sites ", "bold")
            t.append(f"{sites:,}  ")
        t.append("Devices ", "bold")
        t.append(f"{devices:,}" if devices >= 0 else "loading")
        t.append("  Restricted ", "bold")
        t.append(f"{restricted:,}", "bold red" if restricted else "green")
        if review > 0:
            t.append("  Needs review ", "bold")
            t.append(f"{review:,}", "bold yellow")
        t.append("  Unknown ", "bold")
        t.append(f"{unknown:,}" if unknown >= 0 else "...", "yellow" if unknown else "")
        if total is not None:
            t.append("  Plan ", "bold")
            t.append(f"{currency} {total:,.0f}")
            if remaining is not None and remaining != total:
                t.append(f" (left {remaining:,.0f})", "dim")
        if shown != devices and devices >= 0:
            t.append(f"  shown {shown:,}", "dim")
        t.append(f"  [{policy}]", "dim")
        if progress:
            t.append("  " + progress, "bold cyan")
        self.update(t)


class PlanPanel(Static):
    """The highlighted device's plan and the totals per site and overall."""

    DEFAULT_CSS = """
    PlanPanel { width: 28; height: 1fr; border-left: solid $primary; padding: 0 1; overflow-y: auto; }
    """

    def show(self, item: Any | None, device: dict[str, Any] | None, totals: Any | None, currency: str) -> None:
        t = Text(overflow="fold")
        review = device.get("review") if device is not None else None
        if review:
            t.append("Needs review\n", "bold yellow underline")
            t.append("suspected maker ", "dim")
            t.append(clean(review.get("maker") or "?", 40) + "\n", "bold")
            t.append(clean(review.get("reason") or "", 300) + "\n\n", "italic")
        hints = exploited_hints_of(device) if device is not None else []
        if hints:
            t.append("Known-exploited firmware\n", "bold red underline")
            for h in hints[:4]:
                t.append(clean(h.get("cve") or "", 20) + " ", "bold")
                t.append(clean(h.get("title") or "", 100) + "\n", "italic")
            t.append(clean(f"firmware {hints[0].get('firmware') or ''} is in the affected range (CISA KEV); "
                           "update or isolate it", 200) + "\n\n", "dim")
        if item is not None:
            t.append("Replacement plan\n", "bold underline")
            t.append(f"{item.tier} ", "bold red" if item.tier == "P1" else "bold yellow")
            t.append(f"score {item.priority}  ")
            t.append(f"{item.status}\n", "bold")
            if item.status == "exempt" and item.exempt_reason:
                t.append(f"why: {clean(item.exempt_reason, 80)}\n", "italic")
            t.append("Class ", "dim")
            t.append(clean(item.class_label, 40) + "\n")
            t.append("Model ", "dim")
            t.append(clean(f"{item.suggested_maker or '-'} {item.suggested_model or ''}", 80) + "\n")
            t.append("Cost  ", "dim")
            t.append(f"{money(item.cost_total, currency)}\n", "bold")
            t.append(f"  hw {money(item.cost_hardware)} lab {money(item.cost_labour)} "
                     f"lic {money(item.cost_licence)}\n", "dim")
            if item.public_safety:
                t.append("Public-safety role\n", "bold")
            if item.reasons:
                t.append("Why   ", "dim")
                t.append(clean("; ".join(item.reasons), 200) + "\n")
        elif device is not None:
            t.append("No plan: ", "bold")
            r = device.get("restricted")
            t.append("not restricted\n" if r is False else "maker unknown\n" if r is None else "\n")
            t.append("e plans it anyway\n", "dim")
        if totals is not None:
            o = totals.overall
            bs = o.by_status
            t.append("\nPlan totals\n", "bold underline")
            t.append(f"{o.devices:,} devices ", "bold")
            t.append(f"{money(o.total, currency)}\n", "bold")
            t.append(f"planned {bs.get('planned', 0)} ordered {bs.get('ordered', 0)}\n"
                     f"replaced {bs.get('replaced', 0)} exempt {bs.get('exempt', 0)}\n", "dim")
            t.append(f"hw {money(o.hardware)} lab {money(o.labour)}\nlic {money(o.licence)} ", "dim")
            t.append(f"left {money(o.remaining)}\n")
            sites = sorted(totals.by_site.items(), key=lambda kv: (-kv[1].total, kv[0]))
            if sites:
                t.append("\nPer site    devs    total\n", "bold underline")
            for name, st in sites[:12]:
                short = name[:-5] + ".*" if name.endswith(".0/24") else name
                t.append(f"{clean(short, 11):<11.11} {st.devices:>4} {money(st.total):>8}\n")
            if len(sites) > 12:
                t.append(f"+ {len(sites) - 12} more sites\n", "dim")
        self.update(t, layout=False)  # fixed size: no re-layout of the screen on every cursor move


def exploited_hints_of(device: dict[str, Any]) -> list[dict[str, Any]]:
    """The device's known-exploited firmware hints (fingerprints.exploited decides)."""
    from fingerprints.exploited import hint_dicts

    return hint_dicts(device)


def money(value: float, currency: str = "") -> str:
    """Short amounts for narrow panels: 950, 12.3k, 1.07M."""
    v = float(value or 0)
    if abs(v) >= 1_000_000:
        s = f"{v / 1_000_000:.2f}M"
    elif abs(v) >= 10_000:
        s = f"{v / 1000:.1f}k"
    else:
        s = f"{v:,.0f}"
    return f"{currency} {s}" if currency else s
