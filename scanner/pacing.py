"""How fast a scan goes: the packet rate (:class:`RateLimiter`), and hosts in flight that back off when
the event loop lags (issue 13, item 12), as nmap backs off on congestion.

Every packet a probe sends first takes a token from its process's one :class:`RateLimiter` (``rate`` a
second; each worker process gets its share of the rate).

One event loop runs every probe of a process. When too many hosts are in flight, callbacks wait their
turn: a reply that arrived in time is read late, and wall-clock deadlines (a probe's, a host's) expire
on work that was never slow. Measured in the lab: 256 hosts at once lagged the loop up to 2 s and lost
NVR channel lists. So:

* :class:`LagMonitor` wakes every ``interval`` seconds and measures how late it woke (the loop's lag);
  it keeps the recent peak and the total lag since it started.
* :class:`AdaptiveLimit` bounds the hosts in flight. Its limit starts at the concurrency asked for;
  a lag above ``high`` halves it (multiplicative decrease, down to ``floor``), and each quiet interval
  (lag under ``low``) raises it by one, up to the maximum (additive increase): nmap's congestion
  window, with loop lag standing in for dropped probes.
* :meth:`LagMonitor.stalled_since` tells a deadline how long the loop stalled (lags of STALL_MIN or more)
  since a moment, so that the host deadline can give that time back once (up to half the deadline)
  instead of cutting short work that the loop itself delayed.

Whatever is still cut short is recorded with the device (``scanner.probing``: a ``discovery`` entry of
protocol ``camsweep`` naming the probes), so nothing is lost without a trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

LAG_INTERVAL = 0.05  # seconds between the monitor's wake-ups
LAG_HIGH = 0.25  # seconds of lag that halve the limit
LAG_LOW = 0.05  # seconds of lag under which the limit grows again
MIN_HOSTS = 8  # the limit never goes below this (or the concurrency asked for, if lower)
STALL_MIN = 0.1  # seconds: a lag this long counts as a stall given back to deadlines (jitter does not)


class RateLimiter:
    """A token bucket: ``await acquire()`` once per packet; ``rate`` tokens a second, bursts of ``burst``.

    Lock-free reservation (the event loop runs one coroutine at a time): a caller takes a token, letting
    the balance go negative, and sleeps until its own token is due. Waiters therefore do not queue behind
    one another one loop iteration at a time, which would cap a busy scan far below ``rate``.
    """

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = float(rate)
        self.capacity = burst if burst is not None else max(1.0, self.rate / 20)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    async def acquire(self) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1
        if self.tokens < 0:
            await asyncio.sleep(-self.tokens / self.rate)

    __call__ = acquire


class LagMonitor:
    """Measures the event loop's lag: how late a sleeper wakes up."""

    def __init__(self, interval: float = LAG_INTERVAL) -> None:
        self.interval = interval
        self.total = 0.0  # seconds of lag since start
        self.stalled = 0.0  # seconds of stalls (lags of STALL_MIN or more) since start
        self.peak = 0.0  # the largest single lag seen
        self.last = 0.0  # the most recent one
        self.listeners: list[AdaptiveLimit] = []
        self._task: asyncio.Task | None = None

    def start(self) -> LagMonitor:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            t0 = time.monotonic()
            await asyncio.sleep(self.interval)
            self.observe(max(0.0, time.monotonic() - t0 - self.interval))

    def observe(self, lag: float) -> None:
        self.last = lag
        self.total += lag
        if lag >= STALL_MIN:
            self.stalled += lag
        self.peak = max(self.peak, lag)
        for lim in self.listeners:
            lim.on_lag(lag)

    def stalled_since(self, mark: float) -> float:
        """Seconds the loop stalled since ``mark`` (a value of ``stalled`` taken earlier). A busy machine's
        steady jitter is not counted: given back, it would stretch every slow host's deadline."""
        return max(0.0, self.stalled - mark)


class AdaptiveLimit:
    """At most ``limit`` holders at once; the limit follows the loop's lag (see the module's doc)."""

    def __init__(self, maximum: int, floor: int = MIN_HOSTS, high: float = LAG_HIGH, low: float = LAG_LOW) -> None:
        self.maximum = max(1, maximum)
        self.floor = max(1, min(floor, self.maximum))
        self.limit = self.maximum
        self.high, self.low = high, low
        self.held = 0
        self.backoffs = 0  # times the limit was cut
        self.lowest = self.limit
        self._freed = asyncio.Event()

    def on_lag(self, lag: float) -> None:
        if lag >= self.high:
            new = max(self.floor, self.limit // 2)
            if new < self.limit:
                self.limit = new
                self.backoffs += 1
                self.lowest = min(self.lowest, new)
        elif lag < self.low and self.limit < self.maximum:
            self.limit += 1
            self._freed.set()

    async def acquire(self) -> None:
        while self.held >= self.limit:
            self._freed.clear()
            await self._freed.wait()
        self.held += 1

    def release(self) -> None:
        self.held -= 1
        self._freed.set()


def watch(maximum: int, monitor: LagMonitor | None = None) -> tuple[LagMonitor, AdaptiveLimit]:
    """A started monitor (or ``monitor``) with a new limit listening to it."""
    mon = monitor or LagMonitor().start()
    lim = AdaptiveLimit(maximum)
    mon.listeners.append(lim)
    return mon, lim


async def run_bounded(items: Iterable[T], gate: Any, run: Callable[[T], Awaitable[None]],
                      stop: Callable[[], bool] | None = None) -> None:
    """``run(item)`` for each item, as its own task, no more at once than ``gate`` lets through (an
    asyncio.Semaphore, or an :class:`AdaptiveLimit`: the hosts in flight then follow the loop's lag); waits
    for them all. No task starts once ``stop()`` is true (an error to stop the scan with, say)."""
    tasks: set[asyncio.Task] = set()

    async def one(item: T) -> None:
        try:
            await run(item)
        finally:
            gate.release()

    for item in items:
        if stop is not None and stop():
            break
        await gate.acquire()
        t = asyncio.create_task(one(item))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
