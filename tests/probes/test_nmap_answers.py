"""`identify --from nmap-xml` uses what nmap itself decided: its service matches (product, extra info,
CPE names, device type) and its OS-detection classes, as ``discovery`` entries of protocol ``nmap``
read by fingerprints/rules/nmap.yaml. The parser keeps its caps and never raises anything but a clear
NmapXmlError, whatever the file holds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.evidence import parse_record
from scanner.identify import Identifier
from scanner.probes.nmap_xml import MAX_CPES, NmapXmlError, read_nmap_xml
from tests.probes.conftest import RECORDINGS

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
NMAP = RECORDINGS / "nmap"
IDENT = Identifier()


def identify_file(path: Path, strip: tuple[str, ...] = ()) -> dict[str, dict]:
    out = {}
    for rec in read_nmap_xml(str(path)):
        for key in strip:
            rec.pop(key, None)
        out[rec["ip"]] = IDENT.identify(parse_record(rec)).to_dict()
    return out


def nmap_rules(row: dict) -> set[str]:
    return {e["rule"] for e in row["evidence"] if e["rule"].startswith("nmap/")}


# ------------------------------------------------------------------------------------------ the record


def test_service_and_os_answers_become_discovery_entries():
    recs = {r["ip"]: r for r in read_nmap_xml(str(NMAP / "service-matches.xml"))}
    assert len(recs) == 10 and all("mac" not in r for r in recs.values())
    hik = recs["198.18.1.10"]["discovery"]
    assert {"protocol": "nmap", "port": 8000, "source": "nmap-service",
            "fields": {"service": "ipcam", "product": "Hikvision IPCam control port"}} in hik
    axis = recs["198.18.1.13"]
    ftp = next(d for d in axis["discovery"] if d.get("port") == 21)
    assert ftp["fields"] == {"service": "ftp", "product": "Axis P1346 Network Camera ftpd", "version": "5.50beta3",
                             "extrainfo": "2014", "devicetype": "webcam",
                             "cpe": "cpe:/h:axis:p1346_network_camera"}
    assert axis["hostname"] == "axis-accc8e010203"
    # a second CPE of one service gets an entry of its own
    ssh = [d for d in recs["198.18.1.16"]["discovery"] if d.get("port") == 22]
    assert [d["fields"].get("cpe") for d in ssh] == ["cpe:/a:openbsd:openssh:9.2p1", "cpe:/o:linux:linux_kernel"]
    # a port nmap only named from its table (method="table") says nothing
    assert not any(d.get("port") == 37777 for d in recs["198.18.1.12"]["discovery"])
    # OS detection: classes of matches >= 90% accuracy, in nmap-os-db's notation; the 86% guess is left out
    os17 = [d["fields"] for d in recs["198.18.1.17"]["discovery"] if d.get("source") == "nmap-os"]
    assert {"os_match": "AXIS 210A or 211 Network Camera (Linux 2.6.17)", "os_class": "AXIS | embedded || webcam",
            "accuracy": "98", "os_cpe": "cpe:/h:axis:210a_network_camera"} in os17
    assert {"os_cpe": "cpe:/h:axis:211_network_camera"} in os17
    assert not any("HIKVISION" in f.get("os_match", "") for f in os17)
    assert not any("hikvision" in json.dumps(d).lower() for d in recs["198.18.1.17"]["discovery"])
    for r in recs.values():
        assert parse_record(r).has_observation()


def test_nmap_fields_are_not_read_as_the_devices_own_model_or_firmware():
    """nmap's `devicetype` ("webcam") and `version` (a web server's) are not a model or firmware."""
    rows = identify_file(NMAP / "service-matches.xml")
    assert rows["198.18.1.16"]["firmware"] is None and rows["198.18.1.10"]["model"] is None
    assert rows["198.18.1.14"]["model"] == "SNB-2000"  # a Samsung Techwin model nmap named


# ------------------------------------------------------------------------------------------ identify


EXPECTED = {
    "198.18.1.10": ("Hikvision", True),  # Hikvision IP camera httpd, DVR rtspd, IPCam control port
    "198.18.1.11": ("Hikvision", True),  # Hikvision Network Video Recorder http admin (one port)
    "198.18.1.12": ("Dahua", True),  # Dahua webcam httpd, Dahua IP camera rtspd
    "198.18.1.13": ("Axis", False),  # Axis ... Network Camera ftpd + cpe:/h:axis
    "198.18.1.14": ("Hanwha Vision", False),  # Samsung SNB-2000 webcam rtspd (Samsung Techwin)
    "198.18.1.15": ("Bosch", False),  # Bosch DINION telnetd; VideoJet httpd whose extra info names Bosch
    "198.18.1.16": (None, None),  # OpenSSH, BusyBox, GoAhead, Boa, lighttpd, UPnP SDK, Linux: nobody
    # OS class AXIS | embedded || webcam only: one weak clue is not a verdict (issue 12); Boa names nobody
    "198.18.1.17": (None, None),
    "198.18.1.18": (None, None),  # Android's OS class names Google, whoever made the phone
    "198.18.1.19": ("Xiongmai", False),  # cpe:/a:xiongmai_technologies:uc-httpd
}


def test_identify_names_the_maker_from_nmaps_answers_alone():
    rows = identify_file(NMAP / "service-matches.xml")
    got = {ip: (r["manufacturer"], r["restricted"]) for ip, r in rows.items()}
    assert got == EXPECTED
    for ip, (maker, _) in EXPECTED.items():
        assert bool(nmap_rules(rows[ip])) == (maker is not None or ip == "198.18.1.17"), ip
    assert rows["198.18.1.17"]["evidence"][0]["strength"] == "weak"  # an OS fingerprint is weak
    assert rows["198.18.1.10"]["evidence"][0]["strength"] == "medium"  # nmap's service match is medium
    assert rows["198.18.1.10"]["device_type"] == "camera"
    assert rows["198.18.1.16"]["notes"] == []  # generic products are not "unknown makers" either


def test_identify_cli_from_nmap_xml():
    run = subprocess.run([sys.executable, "-m", "scanner.cli", "identify", "--from", "nmap-xml",
                          str(NMAP / "service-matches.xml")], cwd=ROOT, capture_output=True, text=True, timeout=100)
    assert run.returncode == 0, run.stderr
    rows = {r["id"]: r for r in map(json.loads, run.stdout.splitlines())}
    assert {k.split(":", 1)[1]: (r["manufacturer"], r["restricted"]) for k, r in rows.items()} == EXPECTED


def test_real_plain_nmap_sV_of_the_lab_names_every_hikvision_and_dahua_device():
    """A real `nmap -sV` (no scripts) of one device of each lab profile: with the MAC addresses removed
    (as across a router), nmap's answers alone still name every Hikvision and Dahua device."""
    truth = json.loads((NMAP / "lab-plain-sV.truth.json").read_text())
    rows = identify_file(NMAP / "lab-plain-sV.xml", strip=("mac", "mac_vendor"))
    assert set(rows) == set(truth)
    restricted_makers = [ip for ip, t in truth.items() if t["manufacturer"] in ("Hikvision", "Dahua")]
    assert len(restricted_makers) == 12
    for ip in restricted_makers:
        assert rows[ip]["manufacturer"] == truth[ip]["manufacturer"], (truth[ip]["profile"], rows[ip])
        assert rows[ip]["restricted"] is True and nmap_rules(rows[ip]), truth[ip]["profile"]
    for ip, t in truth.items():
        if t["restricted"] is False:
            assert rows[ip]["restricted"] is not True, (t["profile"], rows[ip])
        if rows[ip]["manufacturer"] is not None:
            assert rows[ip]["manufacturer"] == t["manufacturer"], (t["profile"], rows[ip])
    # and with the MACs, as nmap wrote them on the lab's own segment
    with_mac = identify_file(NMAP / "lab-plain-sV.xml")
    assert all(with_mac[ip]["manufacturer"] == t["manufacturer"] for ip, t in truth.items())


def test_scripts_recording_still_identified_and_nmap_rules_fire():
    rows = identify_file(NMAP / "lab-nmap-sV.xml", strip=("mac", "mac_vendor"))
    assert rows["198.18.0.3"]["manufacturer"] == "Dahua" and "nmap/service-product-device" in nmap_rules(
        rows["198.18.0.3"])
    assert rows["198.18.0.4"]["manufacturer"] == "Hikvision"


# ------------------------------------------------------------------------------------------ safety


def _host(ports: str, os_part: str = "") -> str:
    return (f'<host><status state="up"/><address addr="198.18.9.9" addrtype="ipv4"/><ports>{ports}</ports>'
            f'{os_part}</host>')


def test_caps_on_cpes_os_matches_and_values(tmp_path):
    cpes = "".join(f"<cpe>cpe:/h:hikvision:model{i}</cpe>" for i in range(50))
    port = ('<port protocol="tcp" portid="80"><state state="open"/><service name="http" product="'
            + "Hikvision IP camera httpd " + "x" * 5000 + f'" method="probed" conf="10">{cpes}</service></port>')
    matches = "".join(f'<osmatch name="m{i}" accuracy="99" line="1"><osclass vendor="V{i}" osfamily="embedded" '
                      f'type="webcam" accuracy="99"/></osmatch>' for i in range(40))
    path = tmp_path / "big.xml"
    path.write_text(f"<nmaprun>{_host(port * 300, f'<os>{matches}</os>')}</nmaprun>")
    [rec] = read_nmap_xml(str(path))
    nmap = [d for d in rec["discovery"] if d["protocol"] == "nmap"]
    assert len(rec["discovery"]) <= 64
    assert len([d for d in nmap if d.get("source") == "nmap-os"]) <= 9
    assert all(len(v) <= 256 for d in nmap for v in d["fields"].values())
    assert len([d for d in nmap if d.get("port") == 80]) <= 64
    per_port = [d for d in nmap if d.get("port") == 80][:MAX_CPES + 1]
    assert len({d["fields"].get("cpe") for d in per_port}) <= MAX_CPES + 1
    row = IDENT.identify(parse_record(rec))
    assert row.manufacturer == "Hikvision"


_VALID = (NMAP / "service-matches.xml").read_bytes()


def _check(path: Path) -> None:
    try:
        recs = read_nmap_xml(str(path))
    except NmapXmlError as exc:
        assert str(exc)  # a clear message, never another exception
        return
    for r in recs:
        row = IDENT.identify(parse_record(r))  # every record is valid format 1 and identifiable
        assert not any(n.startswith("identification failed") for n in row.notes), row.notes


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.tuples(st.integers(0, len(_VALID)), st.integers(0, 40), st.binary(max_size=24)),
                     max_size=6),
       truncate=st.one_of(st.none(), st.integers(0, len(_VALID))))
def test_parser_never_raises_on_mangled_xml(tmp_path, cuts, truncate):
    data = bytearray(_VALID)
    for pos, length, junk in cuts:  # delete a span and insert junk: broken tags, attributes, entities
        pos = min(pos, len(data))
        data[pos:pos + length] = junk
    if truncate is not None:
        data = data[:truncate]
    path = tmp_path / "mangled.xml"
    path.write_bytes(bytes(data))
    _check(path)


_ATTR = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters='"<>&\x00'), max_size=40)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(product=_ATTR, extrainfo=_ATTR, devicetype=_ATTR, cpe=_ATTR, vendor=_ATTR, family=_ATTR,
       accuracy=st.one_of(_ATTR, st.integers(-5, 200).map(str)), portid=st.one_of(_ATTR, st.integers(0, 70000).map(str)))
def test_parser_never_raises_on_odd_attribute_values(tmp_path, product, extrainfo, devicetype, cpe, vendor, family,
                                                      accuracy, portid):
    from xml.sax.saxutils import quoteattr

    port = (f'<port protocol="tcp" portid={quoteattr(portid)}><state state="open"/><service name="x" '
            f'product={quoteattr(product)} extrainfo={quoteattr(extrainfo)} devicetype={quoteattr(devicetype)} '
            f'method="probed" conf="10"><cpe>{cpe.replace("&", "")}</cpe></service></port>')
    os_part = (f'<os><osmatch name={quoteattr(product)} accuracy={quoteattr(accuracy)} line="1">'
               f'<osclass vendor={quoteattr(vendor)} osfamily={quoteattr(family)} accuracy={quoteattr(accuracy)}>'
               f'<cpe>{cpe.replace("&", "")}</cpe></osclass></osmatch></os>')
    path = tmp_path / "odd.xml"
    path.write_text(f"<nmaprun>{_host(port, os_part)}</nmaprun>", encoding="utf-8")
    _check(path)


def test_malformed_file_gives_a_clear_message_on_the_command_line(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_bytes(_VALID[:200] + b"<host><<<")
    run = subprocess.run([sys.executable, "-m", "scanner.cli", "identify", "--from", "nmap-xml", str(bad)],
                         cwd=ROOT, capture_output=True, text=True, timeout=100)
    assert run.returncode == 2 and "not well-formed XML" in run.stderr and "Traceback" not in run.stderr
