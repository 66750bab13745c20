"""Issue 13, item 11: UDP exchanges are bounded, a unicast exchange ends only on a reply from the host
asked, and mDNS name resolution is bounded in time however many names one host announces."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from scanner.probes import mdns
from scanner.probes.base import MAX_EXCHANGE_BYTES, ProbeContext, _Collector, bounded_replies, udp_exchange

pytestmark = pytest.mark.timeout(60)


async def test_collector_ignores_other_sources_and_caps_bytes():
    c = _Collector(65536, 1, expect="127.0.0.2")
    c.datagram_received(b"spoof", ("127.0.0.9", 161))
    assert not c.enough.is_set() and c.replies == []
    c.datagram_received(b"real", ("127.0.0.2", 161))
    assert c.enough.is_set() and c.replies == [(b"real", ("127.0.0.2", 161))]

    m = _Collector(65536, None)
    for i in range(200):
        m.datagram_received(b"x" * 65536, (f"198.18.0.{i % 250 + 1}", 3702))
    assert sum(len(d) for d, _ in m.replies) <= MAX_EXCHANGE_BYTES
    assert m.enough.is_set()  # full: the round stops listening
    assert sum(len(d) for d, _ in bounded_replies([(b"y" * 65536, ("1.2.3.4", 1))] * 500)) <= MAX_EXCHANGE_BYTES


async def test_unicast_exchange_on_loopback_takes_only_the_host_asked():
    """A real unicast exchange on loopback still gets its answer (the source check passes the host asked)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.setblocking(False)
    loop = asyncio.get_running_loop()

    async def answer() -> None:
        data, addr = await loop.sock_recvfrom(server, 2048)
        server.sendto(b"pong:" + data, addr)

    task = asyncio.create_task(answer())
    got = await udp_exchange(b"ping", ("127.0.0.1", server.getsockname()[1]), 2.0, stop_after=1)
    await task
    server.close()
    assert got == [(b"pong:ping", ("127.0.0.1", got[0][1][1]))]


async def test_context_exchange_drops_replies_from_other_hosts():
    async def datagram(payload, dest, wait, multicast):
        return [(b"forged", ("198.18.0.66", dest[1])), (b"real", (dest[0], dest[1]))]

    ctx = ProbeContext(datagram=datagram)
    assert await ctx.exchange(b"q", ("198.18.0.5", 37020), wait=0.1) == [(b"real", ("198.18.0.5", 37020))]


async def test_engine_retries_when_only_a_stranger_answered():
    from scanner.options import ScanOptions
    from scanner.pacing import RateLimiter
    from scanner.probing import ProbeEnv

    sent = []

    async def datagram(payload, dest, wait, multicast):
        sent.append(dest)
        return [(b"forged", ("198.18.0.66", dest[1]))] if len(sent) == 1 else [(b"real", dest)]

    env = ProbeEnv(ScanOptions(datagram=datagram, retries=1, rate=0), RateLimiter(0))
    replies = await env.context().exchange(b"q", ("198.18.0.5", 161), wait=0.1)
    assert len(sent) == 2 and replies == [(b"real", ("198.18.0.5", 161))]


class _FakeZeroconf:
    def __init__(self, *a, **kw):
        self.zeroconf = self

    async def async_close(self):
        return None


def _fake_zeroconf(monkeypatch, names: list[tuple[str, str, str]], cached: set[str], ask_seconds: float):
    """names: (type, name, ip); names of ``cached`` ips resolve from the cache, others take ask_seconds."""
    import zeroconf.asyncio as zasync

    ip_of = {(t, n): ip for t, n, ip in names}
    asked: list[str] = []

    class Browser:
        def __init__(self, zc, types, handlers):
            for t, n, _ in names:
                handlers[0](zc, t, n, None)

        async def async_cancel(self):
            return None

    class Info:
        def __init__(self, t, n):
            self.t, self.n = t, n
            self.server, self.port, self.properties = "cam.local.", 80, {b"model": b"X"}

        def load_from_cache(self, zc):
            return ip_of[(self.t, self.n)] in cached

        def parsed_addresses(self, version=None):
            return [ip_of[(self.t, self.n)]]

        async def async_request(self, zc, ms):
            asked.append(self.n)
            await asyncio.sleep(ask_seconds)
            return True

    monkeypatch.setattr(zasync, "AsyncZeroconf", _FakeZeroconf)
    monkeypatch.setattr(zasync, "AsyncServiceBrowser", Browser)
    monkeypatch.setattr(zasync, "AsyncServiceInfo", Info)
    return asked


async def test_mdns_host_with_many_names_costs_bounded_time(monkeypatch):
    noisy = [("_http._tcp.local.", f"n{i}._http._tcp.local.", "198.18.0.9") for i in range(600)]
    good = [("_rtsp._tcp.local.", "cam._rtsp._tcp.local.", "198.18.0.5")]
    asked = _fake_zeroconf(monkeypatch, noisy + good, cached={"198.18.0.5"}, ask_seconds=0.4)
    ctx = ProbeContext(interface="lab0", source_address="198.18.0.1", discover_wait=0.2)
    t0 = time.monotonic()
    got = await mdns.discover(ctx)
    took = time.monotonic() - t0
    # sequentially: 256 names x 0.4 s = 100 s; bounded: the browse plus RESOLVE_EXTRA
    assert took < 0.2 + mdns.RESOLVE_EXTRA + 2.0, took
    assert len(asked) <= mdns.MAX_NAMES
    by_ip = {f["ip"]: f["mdns"] for f in got}
    assert by_ip["198.18.0.5"][0]["name"] == "cam._rtsp._tcp.local."  # the quiet host's answer is kept
    assert len(by_ip.get("198.18.0.9", [])) <= mdns.MAX_PER_HOST
