"""Issue 13, item 12: the engine backs off when the event loop lags, gives stalled time back to a host's
deadline, and records with the device every probe a deadline still cut short."""

from __future__ import annotations

import asyncio
import time

import pytest

from scanner.engine import ScanOptions, run_scan
from scanner.events import Pacing, ScanWarning
from scanner.pacing import AdaptiveLimit, LagMonitor
from scanner.probing import CUT_SHORT_PROTOCOL
from scanner.store import Store
from tests.test_engine import FakeIdentifier, alive_opener

pytestmark = pytest.mark.timeout(60)


def opts(**kw) -> ScanOptions:
    base = dict(identifier=FakeIdentifier(), discoverers={}, routes=lambda: [], liveness_timeout=0.2, rate=0,
                timeout=0.5, connect_timeout=0.2, host_timeout=2.0)
    base.update(kw)
    return ScanOptions(**base)


async def test_limit_halves_on_lag_and_grows_back_one_at_a_time():
    lim = AdaptiveLimit(64, floor=8)
    lim.on_lag(0.5)
    assert lim.limit == 32 and lim.backoffs == 1
    for _ in range(5):
        lim.on_lag(1.0)
    assert lim.limit == 8 and lim.lowest == 8  # never under the floor
    lim.on_lag(0.01)
    lim.on_lag(0.01)
    assert lim.limit == 10
    lim.on_lag(0.1)  # between low and high: unchanged
    assert lim.limit == 10
    held = AdaptiveLimit(2, floor=1)
    await held.acquire()
    await held.acquire()
    waiter = asyncio.create_task(held.acquire())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    held.release()
    await asyncio.wait_for(waiter, 1)


async def test_monitor_sees_a_blocked_loop():
    mon = LagMonitor(interval=0.02).start()
    await asyncio.sleep(0.05)
    time.sleep(0.3)  # a callback that hogs the loop
    await asyncio.sleep(0.05)
    await mon.stop()
    assert mon.peak >= 0.2 and mon.total >= 0.2


async def test_lag_cuts_hosts_in_flight_and_the_scan_says_so():
    hosts = [f"127.0.5.{i}" for i in range(1, 121)]
    in_flight = [0]
    after_lag: list[int] = []
    lagged = [False]

    async def probe(host, ctx):
        in_flight[0] += 1
        try:
            if host == "127.0.5.1":
                await asyncio.sleep(0.05)
                time.sleep(0.4)  # the loop stalls
                lagged[0] = True
            await asyncio.sleep(0.05)
            if lagged[0]:
                after_lag.append(in_flight[0])
            return {"http": [{"port": 80, "status": 200, "headers": {"Server": "Boa"}}]}
        finally:
            in_flight[0] -= 1

    events = []
    o = opts(open_stream=alive_opener(set(hosts)), host_probes={"http": probe}, concurrency=64)
    with Store(":memory:") as s:
        sid = await run_scan(["127.0.5.1-120"], o, s, on_event=events.append)
        assert s.scan(sid).device_count == 120  # nothing lost
    pacing = [e for e in events if isinstance(e, Pacing)]
    assert pacing and pacing[0].backoffs >= 1 and pacing[0].lowest < 64 and pacing[0].peak_lag > 0, pacing
    assert not [e for e in events if isinstance(e, ScanWarning) and "lagged" in e.message]  # nothing lost: no warning
    assert after_lag and min(after_lag) < 64  # fewer hosts in flight once the loop lagged


async def test_stalled_time_is_given_back_and_cut_short_probes_are_recorded():
    async def hog(host, ctx):  # on one host, a probe that stalls the loop for 0.4 s
        if host == "127.0.6.1":
            await asyncio.sleep(0.1)
            time.sleep(0.4)
        return {}

    async def two_steps(host, ctx):  # 0.55 s of its own; with the stall it ends after the 0.6 s deadline
        await asyncio.sleep(0.3)
        await asyncio.sleep(0.25)
        return {"http": [{"port": 80, "status": 200, "headers": {"Server": "Boa"}}]}

    async def hang(host, ctx):
        if host == "127.0.6.3":
            await asyncio.sleep(30)
        return {}

    o = opts(open_stream=alive_opener({"127.0.6.1", "127.0.6.2", "127.0.6.3"}), host_timeout=0.6,
             host_probes={"hog": hog, "web": two_steps, "slow": hang})
    events = []
    with Store(":memory:") as s:
        sid = await run_scan(["127.0.6.1-3"], o, s, on_event=events.append)
        recs = {r.ip: r for _, r in s.observations(sid)}
    # the stall was given back: the two-step probe finished on every host
    assert all(recs[ip].http for ip in ("127.0.6.1", "127.0.6.2", "127.0.6.3"))
    # the hanging probe was cut short, and the record says so
    cut = [d for d in recs["127.0.6.3"].discovery if d.protocol == CUT_SHORT_PROTOCOL]
    assert cut and cut[0].fields["cut_short"] == "slow" and cut[0].fields["by"] == "host deadline"
    assert not any(d.protocol == CUT_SHORT_PROTOCOL for d in recs["127.0.6.2"].discovery)
    assert any("cut short" in e.message for e in events if isinstance(e, ScanWarning))
