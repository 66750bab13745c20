"""MAC sources for routed hosts: lease files (ISC dhcpd, dnsmasq, Kea CSV), saved neighbour tables
(ip neigh, show ip arp, arp -an), the evidence line, and the scan step's warnings."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from scanner import macsources as ms
from scanner.evidence import Identification, parse_record

DNSMASQ = """1764700000 4c:11:bf:00:00:02 198.18.0.2 cam-2 01:4c:11:bf:00:00:02
1764700000 A4:14:37:00:00:03 198.18.0.3 * *
duid 00:01:00:01:2c:2f:9a:11:52:54:00:12:34:56
1764700000 1234 fd00::5 * 00:01:00:01
"""

ISC = """# The format of this file is documented in the dhcpd.leases(5) manual page.
authoring-byte-order little-endian;
lease 198.18.1.2 {
  starts 3 2026/12/02 07:00:00;
  binding state active;
  next binding state free;
  hardware ethernet bc:32:5f:0:0:4;
  client-hostname "nvr-4";
}
lease 198.18.1.3 {
  binding state active;
  hardware ethernet 00:11:22:33:44:55;
}
lease 198.18.1.3 {
  binding state free;
  hardware ethernet 00:11:22:33:44:55;
}
lease 198.18.1.2 {
  binding state active;
  hardware ethernet bc:32:5f:00:00:05;
}
"""

KEA = """address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context,pool_id
198.18.0.7,4c:11:bf:00:00:07,,3600,1764700000,1,0,0,cam7,0,,0
198.18.0.8,4c:11:bf:00:00:08,,3600,1764700000,1,0,0,cam8,2,,0
198.18.0.9,not-a-mac,,3600,1764700000,1,0,0,x,0,,0
"""

IP_NEIGH = """198.18.0.2 dev br0 lladdr 4c:11:bf:00:00:02 REACHABLE
198.18.0.4 dev br0  FAILED
198.18.0.5 dev br0 lladdr a4:14:37:00:00:05 STALE
fe80::1 dev br0 lladdr 02:00:00:00:00:01 router STALE
"""

CISCO = """Protocol  Address          Age (min)  Hardware Addr   Type   Interface
Internet  198.18.1.1              -   0200.0000.00fe  ARPA   Vlan20
Internet  198.18.1.6             12   bc32.5f00.0006  ARPA   Vlan20
Internet  198.18.1.7              0   Incomplete      ARPA
"""


def test_dnsmasq():
    p = ms.parse_leases(DNSMASQ)
    assert p.format == "dnsmasq"
    assert p.pairs == (("198.18.0.2", "4c:11:bf:00:00:02"), ("198.18.0.3", "a4:14:37:00:00:03"))
    assert p.unread == 0


def test_isc_journal_last_block_wins_and_free_dropped():
    p = ms.parse_leases(ISC)
    assert p.format == "isc-dhcpd"
    assert dict(p.pairs) == {"198.18.1.2": "bc:32:5f:00:00:05"}


def test_kea_state_and_bad_rows():
    p = ms.parse_leases(KEA)
    assert p.format == "kea"
    assert p.pairs == (("198.18.0.7", "4c:11:bf:00:00:07"),)
    assert p.unread == 1


def test_neighbours():
    p = ms.parse_neighbours(IP_NEIGH)
    assert dict(p.pairs) == {"198.18.0.2": "4c:11:bf:00:00:02", "198.18.0.5": "a4:14:37:00:00:05"}
    assert p.unread == 0
    c = ms.parse_neighbours(CISCO)
    assert dict(c.pairs) == {"198.18.1.1": "02:00:00:00:00:fe", "198.18.1.6": "bc:32:5f:00:00:06"}
    assert c.format == "cisco-arp" and c.unread == 0
    a = ms.parse_neighbours("? (198.18.0.9) at 4c:11:bf:00:00:09 [ether] on eth0\n")
    assert dict(a.pairs) == {"198.18.0.9": "4c:11:bf:00:00:09"}


def test_files_and_warnings(tmp_path):
    good = tmp_path / "dnsmasq.leases"
    good.write_text(DNSMASQ)
    got, warning = ms.entries_from_file(str(good), "dhcp")
    assert warning is None and len(got) == 2
    assert got[0].text() == "mac from DHCP lease file dnsmasq.leases (dnsmasq)"
    bad = tmp_path / "bad.leases"
    bad.write_text("<html>this is not a lease file</html>\nnor this\n")
    got, warning = ms.entries_from_file(str(bad), "dhcp")
    assert got == [] and "malformed" in warning and str(bad) in warning
    got, warning = ms.entries_from_file(str(tmp_path / "missing"), "neighbours")
    assert got == [] and "cannot read" in warning
    binary = tmp_path / "bin"
    binary.write_bytes(b"\x00\x01" * 100)
    assert "not a text file" in ms.entries_from_file(str(binary), "dhcp")[1]


def test_size_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(ms, "MAX_FILE_BYTES", 100)
    f = tmp_path / "big"
    f.write_text(DNSMASQ * 10)
    got, warning = ms.entries_from_file(str(f), "dhcp")
    assert got == [] and "larger than" in warning


def test_annotate_adds_one_line():
    rec = parse_record({"ip": "198.18.0.2", "mac": "4c:11:bf:00:00:02",
                        **ms.MacEntry("198.18.0.2", "4c:11:bf:00:00:02", "snmp", "198.19.0.1",
                                      "ipNetToPhysicalTable").fragment()})
    ident = ms.annotate(Identification(manufacturer="Hikvision"), rec)
    assert ident.manufacturer == "Hikvision"
    assert ident.evidence[-1].value == "4c:11:bf:00:00:02 mac from SNMP neighbour table of 198.19.0.1"
    rec2 = parse_record({"ip": "198.18.0.9", **ms.no_mac_fragment(ms.no_mac_reason("198.18.0.9", False, []))})
    ident2 = ms.annotate(Identification(), rec2)
    assert ident2.evidence[-1].rule == "mac/none" and "routed" in ident2.evidence[-1].value
    assert ms.annotate(Identification(), parse_record({"ip": "198.18.0.3", "mac": "4c:11:bf:00:00:03"})).evidence == ()


def test_attach_rules():
    scan = SimpleNamespace(hosts={"198.18.0.2": [], "198.18.0.3": []}, macs={"198.18.0.3": "02:00:00:00:00:33"},
                           o=SimpleNamespace(assume_up=False), in_scope=lambda ip: ip.startswith("198.18."),
                           attached_nets=[])

    def add_host(ip, frag=None, mac=None):
        scan.hosts.setdefault(ip, []).append(frag)
        scan.macs.setdefault(ip, mac)
    scan.add_host = add_host
    entries = [ms.MacEntry("198.18.0.2", "4c:11:bf:00:00:02", "snmp", "r"),
               ms.MacEntry("198.18.0.2", "4c:11:bf:00:00:99", "dhcp", "f"),  # second source of the same ip
               ms.MacEntry("198.18.0.3", "4c:11:bf:00:00:03", "snmp", "r"),  # ARP's MAC stays
               ms.MacEntry("198.18.0.4", "4c:11:bf:00:00:04", "dhcp", "f"),  # a lease alone adds no host
               ms.MacEntry("198.18.0.5", "4c:11:bf:00:00:05", "snmp", "r"),  # a live neighbour entry does
               ms.MacEntry("10.0.0.1", "4c:11:bf:00:00:06", "snmp", "r")]  # outside the targets
    assert ms.attach(scan, entries) == 2
    assert scan.macs == {"198.18.0.2": "4c:11:bf:00:00:02", "198.18.0.3": "02:00:00:00:00:33",
                         "198.18.0.5": "4c:11:bf:00:00:05"}
    ms.explain_missing(scan, [])
    assert "198.18.0.4" not in scan.hosts


def test_router_list():
    assert ms.parse_router_list(["198.19.0.1,198.19.0.2", "198.19.0.1"]) == ["198.19.0.1", "198.19.0.2"]
    try:
        ms.parse_router_list(["router.example"])
    except ValueError as exc:
        assert "not an IPv4 address" in str(exc)
    else:
        raise AssertionError("a name was accepted")


ip4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
mac = st.binary(min_size=6, max_size=6).filter(lambda b: b not in (b"\0" * 6, b"\xff" * 6)).map(
    lambda b: ":".join(f"{x:02x}" for x in b))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(ip4, mac), max_size=20, unique_by=lambda t: t[0]))
def test_round_trips(pairs):
    dn = "".join(f"1764700000 {m} {i} host *\n" for i, m in pairs)
    assert ms.parse_leases(dn).pairs == tuple(pairs) or not pairs
    kea = "address,hwaddr,state\n" + "".join(f"{i},{m},0\n" for i, m in pairs)
    assert ms.parse_leases(kea).pairs == tuple(pairs)
    isc = "".join(f"lease {i} {{\n  binding state active;\n  hardware ethernet {m};\n}}\n" for i, m in pairs)
    assert ms.parse_leases(isc).pairs == tuple(pairs) or not pairs
    neigh = "".join(f"{i} dev eth0 lladdr {m} REACHABLE\n" for i, m in pairs)
    assert ms.parse_neighbours(neigh).pairs == tuple(pairs)
    cisco = "".join(f"Internet  {i}  5  {m.replace(':', '')[:4]}.{m.replace(':', '')[4:8]}.{m.replace(':', '')[8:]}  "
                    "ARPA  Vlan1\n" for i, m in pairs)
    assert ms.parse_neighbours(cisco).pairs == tuple(pairs)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=2000))
def test_parsers_never_raise(text):
    for fn in (ms.parse_leases, ms.parse_dnsmasq_leases, ms.parse_isc_leases, ms.parse_kea_csv, ms.parse_neighbours):
        p = fn(text)
        assert p.unread >= 0
        for ip, m in p.pairs:
            assert ip.count(".") == 3 and len(m) == 17


def test_annotate_device_reported_mac():
    rec = parse_record({"ip": "198.18.0.9", "mac": "4c:11:bf:00:00:09",
                        **ms.no_mac_fragment(ms.no_mac_reason("198.18.0.9", False, []))})
    hit = ms.annotate(Identification(), rec).evidence[-1]
    assert hit.rule == "mac/source" and "reported by the device itself" in hit.value
