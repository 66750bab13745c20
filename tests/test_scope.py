"""Issue 13, item 1: an address the user did not name, or excluded, gets no packet at all.

Unit level (no network): what the engine hands the ARP sweep, and when it asks multicast questions.
The lab test tests/integration/test_scope_lab.py captures the wire in the scanner's namespace.
"""

from __future__ import annotations

import ipaddress

import pytest

from scanner.engine import ScanOptions, run_scan
from scanner.localnet import Route
from scanner.scope import covers_segment, segment_addresses
from scanner.store import Store
from scanner.targets import parse_targets

NET = ipaddress.IPv4Network("198.18.0.0/24")


def test_covers_segment():
    assert covers_segment(parse_targets(["198.18.0.0/24"]), NET)
    assert covers_segment(parse_targets(["198.18.0.1-254"]), NET)
    assert covers_segment(parse_targets(["198.18.0.0/16"], max_hosts=70000), NET)
    assert covers_segment(parse_targets(["198.18.0.2-254"]), NET, own=["198.18.0.1"])  # the scanner's own
    assert not covers_segment(parse_targets(["198.18.0.2-254"]), NET, own=["198.18.0.9"])
    assert not covers_segment(parse_targets(["198.18.0.0/24"], exclude=["198.18.0.5"]), NET)
    assert covers_segment(parse_targets(["198.18.0.0/24"], exclude=["198.18.0.1"]), NET, own=["198.18.0.1"])
    assert not covers_segment(parse_targets(["198.18.0.0/28"]), NET)
    assert not covers_segment(parse_targets(["198.18.0.1-200", "198.18.0.201-253"]), NET)
    assert covers_segment(parse_targets(["198.18.0.1-200", "198.18.0.201-254"]), NET)
    assert covers_segment(parse_targets(["198.18.0.*"]), NET)
    assert not covers_segment(parse_targets(["198.18.0.0/24"]), ipaddress.IPv4Network("198.18.0.0/16"))


def test_segment_addresses_are_targets_only():
    ts = parse_targets(["10.0.0-3.5"])
    assert segment_addresses(ts, [ipaddress.IPv4Network("10.0.0.0/16")]) == [f"10.0.{i}.5" for i in range(4)]
    ts = parse_targets(["198.18.0.0/28"], exclude=["198.18.0.5"])
    got = segment_addresses(ts, [NET], skip=["198.18.0.1"])
    assert got == [f"198.18.0.{i}" for i in range(2, 15) if i != 5]
    assert segment_addresses(ts, [ipaddress.IPv4Network("198.18.1.0/24")]) == []


def _arp_recorder(asked: list[str]):
    async def arp(ctx, addresses=None, on_answers=None):
        asked.extend(addresses)
        return [{"ip": a, "mac": "28:57:be:00:00:%02x" % (i % 256)} for i, a in enumerate(addresses)]
    return arp


@pytest.mark.parametrize(("targets", "exclude", "multicast", "want_multicast"), [
    (["198.18.0.0/24"], (), None, True),  # the whole segment: multicast by default
    (["198.18.0.0/24"], ("198.18.0.5",), None, False),  # one excluded: the segment is not covered
    (["198.18.0.0/28"], (), None, False),  # part of it
    (["198.18.0.0/28"], (), True, True),  # --multicast
    (["198.18.0.0/24"], (), False, False),  # --no-multicast
])
async def test_arp_asks_targets_only_and_multicast_only_when_covered(targets, exclude, multicast, want_multicast):
    asked: list[str] = []
    mcast: list[str] = []

    async def wsd(ctx):
        mcast.append(ctx.interface)
        return []

    from tests.test_engine import FakeIdentifier

    o = ScanOptions(identifier=FakeIdentifier(), routes=lambda: [Route("lab0", NET, None)], probes=(), host_probes={},
                    discoverers={"arp": _arp_recorder(asked), "wsd": wsd}, rate=0, exclude=exclude,
                    multicast=multicast)
    with Store(":memory:") as store:
        sid = await run_scan(targets, o, store)
        ts = parse_targets(targets, exclude=exclude)
        assert asked and all(a in ts for a in asked)  # no packet to a non-target or excluded address
        assert sorted(asked, key=ipaddress.ip_address) == sorted(ts, key=ipaddress.ip_address)
        assert "198.18.0.5" not in asked if exclude else True
        assert bool(mcast) is want_multicast
        assert store.scan(sid).options["multicast"] == multicast


async def test_link_local_target_keeps_its_scope_through_the_scan():
    """Issue 13, item 13: fe80::1%eth0 is connected to, probed and stored with its zone."""
    from tests.test_engine import FakeIdentifier, alive_opener

    calls: list = []
    probed: list[str] = []

    async def probe(host, ctx):
        probed.append(host)
        return {"http": [{"port": 80, "status": 200, "headers": {"Server": "App-webs/"}}]}

    o = ScanOptions(identifier=FakeIdentifier(), discoverers={}, routes=lambda: [], rate=0, liveness_timeout=0.2,
                    timeout=0.5, connect_timeout=0.2, host_timeout=2, open_stream=alive_opener({"fe80::1%eth0"}, calls),
                    host_probes={"http": probe})
    with Store(":memory:") as s:
        sid = await run_scan(["fe80::1%eth0", "fe80::2%eth0"], o, s)
        assert {h for h, _ in calls} == {"fe80::1%eth0", "fe80::2%eth0"}
        assert probed == ["fe80::1%eth0"]
        assert [d["ip"] for d in s.devices(sid)] == ["fe80::1%eth0"]
        assert s.scan(sid).targets == ["fe80::1%eth0", "fe80::2%eth0"]


async def test_the_scanners_own_address_gets_no_liveness_packet(monkeypatch):
    """The scanner's own address among the targets is neither ARP-asked nor echoed or knocked on (it cost a
    whole liveness wait, ~1 s, on every scan of a segment the scanner sits on)."""
    import scanner.localnet as localnet
    from tests.test_engine import FakeIdentifier, alive_opener

    monkeypatch.setattr(localnet, "interface_addresses", lambda iface: ("198.18.0.1", "02:00:00:00:00:01"))
    asked: list[str] = []
    calls: list = []
    o = ScanOptions(identifier=FakeIdentifier(), routes=lambda: [Route("lab0", NET, None)], probes=(), host_probes={},
                    discoverers={"arp": _arp_recorder(asked)}, rate=0, liveness_timeout=0.2,
                    open_stream=alive_opener(set(), calls))
    with Store(":memory:") as store:
        await run_scan(["198.18.0.0/24"], o, store)
    assert asked and "198.18.0.1" not in asked
    assert calls == []  # every other target was ARP-asked: no TCP liveness at all, least of all to itself
