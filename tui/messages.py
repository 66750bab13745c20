"""The TUI's messages, in one module that the app, the screens and the widgets all import (none of them
imports another to talk to it).

Widgets announce what happened (``DeviceHighlighted``, ``DeviceSelected``, ``SortRequested``); screens ask
for a change of the view (``FilterChanged``, ``RestrictedOnlyToggled``, ``PlanEditRequested``,
``NoteSaveRequested``, ``PlanSaveRequested``). They bubble up to the app, which changes its
:class:`tui.state.ViewState` and shows the result. The app announces ``PlanChanged`` and ``ScanFinished``.

Messages are dataclasses, as Textual allows (``Message.__post_init__``); ``eq=False``: a message is itself,
not its values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from textual.message import Message

if TYPE_CHECKING:
    from scanner.plan import PlanItem


@dataclass(eq=False)
class DeviceHighlighted(Message):
    """The table's cursor rests on another device (None: the table is empty)."""

    device_id: int | None


@dataclass(eq=False)
class DeviceSelected(Message):
    """Enter or a double click on a row: open the device."""

    device_id: int


@dataclass(eq=False)
class SortRequested(Message):
    """``s``/``S`` or a click on a column header: sort the rows by ``key``."""

    key: str
    reverse: bool


@dataclass(eq=False)
class FilterChanged(Message):
    """The filter bar's text changed. ``at_once``: apply it now (enter, escape, m/u), otherwise when typing
    rests."""

    text: str
    at_once: bool = False


class RestrictedOnlyToggled(Message):
    """``r``: restricted devices only, on/off."""


@dataclass(eq=False)
class PlanEditRequested(Message):
    """``e``: edit this device's replacement plan."""

    device_id: int


@dataclass(eq=False)
class NoteSaveRequested(Message):
    """Save the note of ``device`` (kept by its MAC)."""

    device: dict[str, Any]
    text: str


class SaveAnswer(Protocol):
    def saved(self, error: str | None) -> None: ...


@dataclass(eq=False)
class PlanSaveRequested(Message):
    """The plan editor's save: the app saves ``changes`` to ``item`` through plan.py and answers with
    ``editor.saved(error)`` (None: saved)."""

    editor: SaveAnswer
    item: PlanItem
    changes: dict[str, Any]


@dataclass(eq=False)
class PlanChanged(Message):
    """A plan item was saved (``item`` is the new one)."""

    item: PlanItem


@dataclass(eq=False)
class ScanFinished(Message):
    """The scan the app ran finished (``error``: why it failed)."""

    scan_id: int | None
    error: str | None = None
