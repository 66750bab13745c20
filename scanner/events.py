"""What a running scan tells its caller (``run_scan(..., on_event=...)``): one frozen dataclass per kind
of event, so that every front end (the CLI's progress bar, the TUI) reads the same fields.

In the order a scan sends them: :class:`Phase` (a discovery step done), :class:`ScanWarning` (something
the user should know; the scan goes on), :class:`HostsFound` (discovery is over: this many hosts will be
probed), :class:`Progress` (hosts done of the total), :class:`DeviceIdentified` (a device written to the
store), :class:`Pacing` (hosts in flight were cut while the event loop lagged; nothing lost), and last
:class:`Finished`, always, whether the scan completed or not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class HostsFound:
    """Discovery is over: ``count`` hosts are to be probed (or written, in a discovery-only scan)."""

    count: int


@dataclass(frozen=True, slots=True)
class Progress:
    """``done`` hosts of ``total`` probed, identified and written."""

    done: int
    total: int


@dataclass(frozen=True, slots=True)
class Phase:
    """A step of discovery done (``"discovery"``, ``"liveness"``, ``"wsd on eth0"``, ``"mac sources"``...),
    with how long it took where measured and the counts that step has (``hosts``, ``replies``,
    ``neighbours``, ``fdb``, ``entries``; ``version``: the SNMP version a router's tables were read with)."""

    name: str
    seconds: float | None = None
    hosts: int | None = None
    replies: int | None = None
    neighbours: int | None = None
    fdb: int | None = None
    entries: int | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class ScanWarning:
    """Something the user should know (a discoverer failed, a device the store refused...); the scan goes on."""

    message: str


@dataclass(frozen=True, slots=True)
class DeviceIdentified:
    """A device written to the store: ``row`` as the store lists it (device_id, ip, mac and the
    identification's fields); a camera behind a recorder also has the recorder's ``parent_id`` and its
    ``channel`` there."""

    row: dict[str, Any] = field(hash=False)
    parent_id: int | None = None
    channel: str | None = None

    def as_row(self) -> dict[str, Any]:
        """The device row with ``parent_id`` and ``channel`` when it has a parent (what the store lists)."""
        if self.parent_id is None:
            return dict(self.row)
        return {**self.row, "parent_id": self.parent_id, "channel": self.channel}


@dataclass(frozen=True, slots=True)
class Pacing:
    """The event loop lagged (up to ``peak_lag`` seconds), so hosts in flight were cut, to ``lowest`` at the
    worst, ``backoffs`` times (scanner.pacing). Nothing was lost: not a warning."""

    peak_lag: float
    lowest: int
    backoffs: int


@dataclass(frozen=True, slots=True)
class Finished:
    """The scan ended: ``status`` complete, incomplete (cancelled) or error; ``devices``: how many the
    store holds for it."""

    scan_id: int
    status: str
    devices: int


ScanEvent = HostsFound | Progress | Phase | ScanWarning | DeviceIdentified | Pacing | Finished
