"""The TUI's messages, in one module that the app, the screens and the widgets all import (none of them
imports another to talk to it).

Widgets announce what happened (``DeviceHighlighted``, ``DeviceSelected``, ``SortRequested``); screens ask
for a change of the view (``FilterChanged``, ``RestrictedOnlyToggled``, ``PlanEditRequested``,
``NoteSaveRequested``, ``PlanSaveRequested``). They bubble up to the app, which changes its
:class:`tui.state.ViewState` and shows the result. The app announces ``PlanChanged`` and ``ScanFinished``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from textual.message import Message

if TYPE_CHECKING:
    from scanner.plan import PlanItem


class DeviceHighlighted(Message):
    """The table's cursor rests on another device (None: the table is empty)."""

    def __init__(self, device_id: int | None) -> None:
        super().__init__()
        self.device_id = device_id


class DeviceSelected(Message):
    """Enter or a double click on a row: open the device."""

    def __init__(self, device_id: int) -> None:
        super().__init__()
        self.device_id = device_id


class SortRequested(Message):
    """``s``/``S`` or a click on a column header: sort the rows by ``key``."""

    def __init__(self, key: str, reverse: bool) -> None:
        super().__init__()
        self.key = key
        self.reverse = reverse


class FilterChanged(Message):
    """The filter bar's text changed. ``at_once``: apply it now (enter, escape, m/u), otherwise when typing
    rests."""

    def __init__(self, text: str, *, at_once: bool = False) -> None:
        super().__init__()
        self.text = text
        self.at_once = at_once


class RestrictedOnlyToggled(Message):
    """``r``: restricted devices only, on/off."""


class PlanEditRequested(Message):
    """``e``: edit this device's replacement plan."""

    def __init__(self, device_id: int) -> None:
        super().__init__()
        self.device_id = device_id


class NoteSaveRequested(Message):
    """Save the note of ``device`` (kept by its MAC)."""

    def __init__(self, device: dict[str, Any], text: str) -> None:
        super().__init__()
        self.device = device
        self.text = text


class SaveAnswer(Protocol):
    def saved(self, error: str | None) -> None: ...


class PlanSaveRequested(Message):
    """The plan editor's save: the app saves ``changes`` to ``item`` through plan.py and answers with
    ``editor.saved(error)`` (None: saved)."""

    def __init__(self, editor: SaveAnswer, item: PlanItem, changes: dict[str, Any]) -> None:
        super().__init__()
        self.editor = editor
        self.item = item
        self.changes = changes


class PlanChanged(Message):
    """A plan item was saved (``item`` is the new one)."""

    def __init__(self, item: Any) -> None:
        super().__init__()
        self.item = item


class ScanFinished(Message):
    def __init__(self, scan_id: int | None, error: str | None = None) -> None:
        super().__init__()
        self.scan_id = scan_id
        self.error = error
