"""`camsweep scan` end to end in-process: loopback targets (real TCP liveness: loopback refuses, so every
target is up), fake probes and identifier patched in; outputs, exit codes, errors."""

from __future__ import annotations

import csv
import io
import json

import pytest

from scanner import engine, localnet, pacing
from scanner.cli import main
from scanner.errors import FingerprintError
from scanner.evidence import Identification
from scanner.probes import registry
from scanner.store import Store

pytestmark = pytest.mark.timeout(60)


class Ident:
    def identify(self, rec):
        server = next((h.headers.get("Server", "") for h in rec.http), "")
        if server == "App-webs/":
            return Identification(manufacturer="Hikvision", brand="LTS", model="CMIP3042", restricted=True,
                                  lists=("ndaa889",), confidence=0.95, device_type="camera")
        if server == "=cmd|' /C calc'!A0":
            return Identification(manufacturer="Evil\x1b[31m", restricted=False, confidence=0.5)
        if any(d.protocol == "nvr_channel" for d in rec.discovery):
            return Identification(manufacturer="Dahua", restricted=True, device_type="camera", confidence=0.7)
        return Identification()


SERVERS = {"127.0.0.2": "App-webs/", "127.0.0.4": "=cmd|' /C calc'!A0"}


@pytest.fixture(autouse=True)
def fakes(monkeypatch):
    seen_creds = {}

    async def http(host, ctx):
        seen_creds[host] = ctx.credentials_for(host)
        frag = {"http": [{"port": 80, "status": 200, "headers": {"Server": SERVERS.get(host, "nginx")}}]}
        if host == "127.0.0.2" and ctx.credentials_for(host):
            frag["discovery"] = [{"protocol": "nvr_channel", "fields": {"channel": "1", "ip": "10.9.9.2"}}]
        return frag

    def load_identifier(policy):
        if policy != "ndaa889":  # as the real Identifier does
            raise FingerprintError(f"unknown policy {policy!r} (known: ndaa889)")
        return Ident()

    monkeypatch.setattr(engine, "load_identifier", load_identifier)
    monkeypatch.setattr(registry, "host_probes", lambda names=None: {"http": http})
    monkeypatch.setattr(registry, "discoverers", lambda names=(): {})
    monkeypatch.setattr(localnet, "read_routes", lambda: [])
    monkeypatch.delenv("CAMSWEEP_USERNAME", raising=False)
    monkeypatch.delenv("CAMSWEEP_PASSWORD", raising=False)
    return seen_creds


def scan(capsys, *args):
    code = main(["scan", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_output_restricted_first_with_identification_fields(tmp_path, capsys):
    db = tmp_path / "s.db"
    code, out, err = scan(capsys, "127.0.0.2-4", "--db", str(db), "--format", "json")
    assert code == 0, err
    devices = json.loads(out)
    assert [d["ip"] for d in devices][0] == "127.0.0.2"
    first = devices[0]
    for key in ("ip", "mac", "manufacturer", "brand", "model", "restricted", "lists", "confidence", "evidence"):
        assert key in first
    assert first["manufacturer"] == "Hikvision" and first["brand"] == "LTS" and first["restricted"] is True
    assert {d["ip"] for d in devices} == {"127.0.0.2", "127.0.0.3", "127.0.0.4"}
    assert "scan 1 complete: 3 devices, 1 restricted" in err
    assert Store(db).scan(1).status == "complete"


def test_table_csv_and_hostile_strings(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    code, out, err = scan(capsys, "127.0.0.2-4", "--db", db)
    assert code == 0
    lines = out.splitlines()
    assert any("127.0.0.2" in ln and "Hikvision" in ln and "yes" in ln for ln in lines)
    assert "\x1b" not in out  # a device's escape sequence never reaches the terminal
    code, out, err = scan(capsys, "127.0.0.2-4", "--db", db, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0]["ip"] == "127.0.0.2" and rows[0]["restricted"] == "yes" and rows[0]["lists"] == "ndaa889"
    evil = next(r for r in rows if r["ip"] == "127.0.0.4")
    assert "\x1b" not in evil["manufacturer"]


def test_evidence_out_and_quiet(tmp_path, capsys):
    ev = tmp_path / "ev.jsonl"
    code, out, err = scan(capsys, "127.0.0.2", "127.0.0.3", "--db", str(tmp_path / "s.db"), "--quiet",
                          "--evidence-out", str(ev), "--format", "json")
    assert code == 0 and err == ""
    recs = [json.loads(x) for x in ev.read_text().splitlines()]
    assert {r["ip"] for r in recs} == {"127.0.0.2", "127.0.0.3"}
    assert all(r["http"][0]["headers"]["Server"] for r in recs)


def test_fail_on_restricted(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    assert scan(capsys, "127.0.0.2", "--db", db, "--fail-on", "restricted", "-q")[0] == 1
    assert scan(capsys, "127.0.0.3", "--db", db, "--fail-on", "restricted", "-q")[0] == 0


def test_credentials_file_gives_channels_and_stays_secret(tmp_path, capsys, fakes):
    creds = tmp_path / "creds.ini"
    creds.write_text("[127.0.0.2]\nusername = admin\npassword = Sup3r-Secret\n")
    creds.chmod(0o600)
    db = tmp_path / "s.db"
    code, out, err = scan(capsys, "127.0.0.2-3", "--db", str(db), "--credentials", str(creds), "--format", "json",
                         )
    assert code == 0, err
    devices = json.loads(out)
    kid = next(d for d in devices if d["parent_ip"])
    assert kid["parent_ip"] == "127.0.0.2" and kid["channel"] == "1" and kid["ip"] == "10.9.9.2"
    assert fakes["127.0.0.2"] == ("admin", "Sup3r-Secret") and fakes["127.0.0.3"] is None
    assert "Sup3r-Secret" not in out + err
    assert "Sup3r-Secret" not in "\n".join(Store(db).db.conn.iterdump())
    # the table lists the channel under its recorder
    code, out, err = scan(capsys, "127.0.0.2-3", "--db", str(db), "--credentials", str(creds))
    lines = [ln for ln in out.splitlines() if "127.0.0.2" in ln or "ch 1" in ln]
    assert "127.0.0.2" in lines[0] and "ch 1" in lines[1]


@pytest.mark.parametrize("args,msg", [
    ([], "no targets given"),
    (["10.0.0.0/8"], "--max-hosts"),
    (["127.0.0.1", "--credentials", "/nonexistent/creds.ini"], "cannot read the credentials file"),
    (["--resume"], "nothing to resume"),
    (["127.0.0.1", "--resume"], "name none"),
    (["-iL", "/nonexistent/list"], "cannot read"),
    (["127.0.0.1", "--policy", "no-such-policy"], "unknown policy"),
    (["127.0.0.1", "--probes", "http,telepathy"], "unknown probe 'telepathy'"),
])
def test_errors_are_one_line_and_exit_2(tmp_path, capsys, args, msg):
    code, out, err = scan(capsys, *args, "--db", str(tmp_path / "s.db"))
    assert code == 2 and out == ""
    assert msg in err and "Traceback" not in err


def test_a_loader_failure_stops_the_scan_at_once(tmp_path, capsys):
    import time

    t0 = time.monotonic()
    code, out, err = scan(capsys, "127.0.0.2", "--policy", "nope", "--db", str(tmp_path / "s.db"))
    assert code == 2 and "unknown policy 'nope'" in err and time.monotonic() - t0 < 10
    (info,) = Store(tmp_path / "s.db").scans()
    assert info.status == "error" and info.device_count == 0


def test_bad_arguments_exit_2(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["scan", "127.0.0.1", "--rate", "fast", "--db", str(tmp_path / "s.db")])
    assert exc.value.code == 2
    assert "not a number" in capsys.readouterr().err


def test_discovery_only_runs_no_probe(tmp_path, capsys, fakes):
    code, out, err = scan(capsys, "127.0.0.2-3", "-sn", "--db", str(tmp_path / "s.db"), "--format", "json")
    assert code == 0 and fakes == {}
    assert {d["ip"] for d in json.loads(out)} == {"127.0.0.2", "127.0.0.3"}


def test_pcap_is_read_instead_of_the_wire(tmp_path, capsys, fakes, monkeypatch):
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import ARP, Ether
    from scapy.utils import wrpcap

    sent = []
    monkeypatch.setattr(pacing.RateLimiter, "acquire", lambda self: sent.append(1) or _done())
    pkts = [
        Ether(src="28:57:be:00:00:05", dst="ff:ff:ff:ff:ff:ff") / ARP(op=2, psrc="198.18.0.5", hwsrc="28:57:be:00:00:05"),
        Ether(src="3c:ef:8c:00:00:06") / IP(src="198.18.0.6", dst="239.255.255.250") / UDP(sport=1900, dport=1900) /
        b"NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nSERVER: Dahua/1.0 UPnP/1.0\r\nNTS: ssdp:alive\r\n"
        b"NT: upnp:rootdevice\r\nUSN: uuid:x::upnp:rootdevice\r\n\r\n",
        Ether(src="00:11:22:33:44:55") / ARP(op=2, psrc="10.1.1.1", hwsrc="00:11:22:33:44:55"),  # not a target
    ]
    cap = tmp_path / "site.pcap"
    wrpcap(str(cap), pkts)
    code, out, err = scan(capsys, "198.18.0.0/24", "--pcap", str(cap), "--db", str(tmp_path / "s.db"),
                          "--format", "json")
    assert code == 0, err
    devices = {d["ip"]: d for d in json.loads(out)}
    assert set(devices) == {"198.18.0.5", "198.18.0.6"}
    assert devices["198.18.0.5"]["mac"] == "28:57:be:00:00:05"
    assert fakes == {} and sent == []  # no probe ran, no packet was paced out
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    code, out, err = scan(capsys, "198.18.0.0/24", "--pcap", str(bad), "--db", str(tmp_path / "s.db"))
    assert code == 2 and "capture" in err and "Traceback" not in err


async def _done():
    return None


def test_report_written_when_the_scan_ends_and_fail_on_conditions(tmp_path, capsys):
    db = str(tmp_path / "s.db")
    html, js = tmp_path / "r.html", tmp_path / "r.json"
    code, out, err = scan(capsys, "127.0.0.2-3", "--db", db, "--report", f"html:{html}", "--report", f"json:{js}",
                          "--fail-on", "relabel", "-q")
    assert code == 1  # the LTS unit is a Hikvision relabel
    assert "CMIP3042" in html.read_text() and "<script" not in html.read_text().lower()
    assert {d["ip"] for d in json.loads(js.read_text())["devices"]} >= {"127.0.0.2", "127.0.0.3"}
    # nothing restricted on .3 alone; "new" compares with the previous complete scan of the site
    assert scan(capsys, "127.0.0.3", "--db", db, "--fail-on", "restricted,unknown", "-q")[0] == 1
    assert scan(capsys, "127.0.0.3", "--db", db, "--fail-on", "restricted", "-q")[0] == 0


def test_bad_report_spec_and_fail_on_are_refused_before_scanning(tmp_path, capsys):
    db = tmp_path / "s.db"
    code, _, err = scan(capsys, "127.0.0.2", "--db", str(db), "--report", "pdfx:/tmp/x")
    assert code == 2 and "FORMAT:PATH" in err
    code, _, err = scan(capsys, "127.0.0.2", "--db", str(db), "--fail-on", "restricted,bogus")
    assert code == 2 and "bogus" in err
    assert not db.exists() or Store(str(db)).scans() == []
