"""The one datagram responder every UDP discovery protocol runs on (WS-Discovery, SSDP, mDNS, SADP, DHIP).

A protocol module supplies ``answer(dev, data, addr) -> bytes | None`` (a pure function: bad input
gives None, never an exception). Replies always leave from the device's unicast socket, so their
source is the device's own address; answers to multicast queries wait a random 0..``wsd_max_delay``
seconds (WS-Discovery's APP_MAX_DELAY, lab-notes 5.8) so that hundreds of devices do not overrun the
asker's socket buffer. Each socket answers at most :data:`MAX_ANSWERS_PER_SECOND`, so no datagram
storm can be amplified through the lab.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from scanner.lab.responders.base import Device, garbage

Answer = Callable[[Device, bytes, tuple[str, int]], "bytes | tuple[bytes, tuple[str, int]] | None"]
MAX_DATAGRAM = 9000
MAX_ANSWERS_PER_SECOND = 200


class Responder(asyncio.DatagramProtocol):
    """Answers datagrams for one device and one protocol; ``reply`` is the unicast transport to send with."""

    def __init__(self, dev: Device, answer: Answer, *, multicast: bool, reply: Responder | None = None) -> None:
        self.dev = dev
        self.answer = answer
        self.multicast = multicast
        self.reply_to = reply
        self.transport: asyncio.DatagramTransport | None = None
        self._window = 0.0
        self._count = 0
        self.pending: set[asyncio.TimerHandle] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def _allowed(self) -> bool:
        now = time.monotonic()
        if now - self._window >= 1.0:
            self._window, self._count = now, 0
        self._count += 1
        return self._count <= MAX_ANSWERS_PER_SECOND

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        if len(data) > MAX_DATAGRAM or not self._allowed():
            return
        try:
            if self.dev.hostile == "garbage":
                out: bytes | tuple[bytes, tuple[str, int]] | None = garbage(random.randint(64, 1400))
            else:
                out = self.answer(self.dev, data, addr)
        except Exception:  # noqa: BLE001 - a responder bug must not stop the service
            out = None
        if not out:
            return
        payload, dest = out if isinstance(out, tuple) else (out, addr)
        sender = self.reply_to or self
        if self.multicast and self.dev.wsd_max_delay > 0:
            handle = asyncio.get_running_loop().call_later(
                random.uniform(0, self.dev.wsd_max_delay), sender.send, payload, dest)
            self.pending.add(handle)
            if len(self.pending) > 1024:
                self.pending = {h for h in self.pending if not h.cancelled() and h.when() > time.monotonic()}
        else:
            sender.send(payload, dest)

    def send(self, payload: bytes, dest: tuple[str, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            try:
                self.transport.sendto(payload, dest)
            except OSError:
                pass

    def error_received(self, exc: Exception) -> None:
        pass

    def close(self) -> None:
        for h in self.pending:
            h.cancel()
        if self.transport is not None:
            self.transport.close()
