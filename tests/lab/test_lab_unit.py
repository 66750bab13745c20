"""The lab's pure parts: addressing, names, plan, ground truth, comparison, sysctl bookkeeping, CLI messages.
No root and no network needed."""

from __future__ import annotations

import configparser
import ipaddress
import json
import re
from pathlib import Path

import pytest

from scanner.cli import main
from scanner.errors import LabError
from scanner.lab import manager
from scanner.lab import netns as nsmod
from scanner.lab.profiles import build_fleet


def test_addresses_fit_the_fleet() -> None:
    net, scanner, ips = manager.plan_addresses(250, "netns")
    assert str(net) == "198.18.0.0/24" and scanner == "198.18.0.1"
    assert ips[0] == "198.18.0.2" and ips[-1] == "198.18.0.251" and len(set(ips)) == 250
    net, scanner, ips = manager.plan_addresses(1000, "netns")
    assert str(net) == "198.18.0.0/22" and len(set(ips)) == 1000
    assert all(ipaddress.ip_address(ip) in net and ip not in (scanner, str(net.broadcast_address)) for ip in ips)
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("198.18.0.0/15") for ip in ips)
    net, scanner, ips = manager.plan_addresses(3, "loopback")
    assert str(net) == "127.18.0.0/24" and scanner is None and ips == ["127.18.0.2", "127.18.0.3", "127.18.0.4"]
    with pytest.raises(LabError):
        manager.plan_addresses(manager.MAX_DEVICES + 1, "netns")
    # loopback labs share 127/8: a second one takes the next free block
    net, _, ips = manager.plan_addresses(3, "loopback", taken=["127.18.0.0/24", "127.18.2.0/24"])
    assert str(net) == "127.18.1.0/24" and ips[0] == "127.18.1.2"
    net, _, _ = manager.plan_addresses(300, "loopback", taken=["127.18.0.0/24"])
    assert str(net) == "127.18.2.0/23"
    net, _, _ = manager.plan_addresses(3, "netns", taken=["198.18.0.0/24"])
    assert str(net) == "198.18.0.0/24", "a netns lab's addresses are its own"


def test_names_never_match_another_prefix() -> None:
    pat = nsmod.LabNames("csw").pattern()
    assert all(pat.match(n) for n in ("csw-br", "csw-scan", "csw-d0", "csw-d999"))
    assert not any(pat.match(n) for n in ("cswdev-br", "cswt1-d0", "csw-d", "csw-dx", "xcsw-br", "csw-br2"))


@pytest.mark.parametrize("bad", ["", "CSW", "1abc", "a-b", "a" * 17, "a b", "../x"])
def test_bad_prefix_is_refused(bad: str) -> None:
    with pytest.raises(LabError, match="prefix"):
        nsmod.validate_prefix(bad)


def test_plan_and_ground_truth_keep_credentials_apart(tmp_path: Path) -> None:
    specs = build_fleet(40, 3)
    plan = manager.build_plan(specs, prefix="cswu", mode="netns", seed=3)
    assert plan["cidr"] == "198.18.0.0/24" and plan["scanner_netns"] == "cswu-scan"
    devs = plan["devices"]
    assert [d["netns"] for d in devs[:2]] == ["cswu-d0", "cswu-d1"]
    assert len({d["mac"] for d in devs}) == 40 and len({d["password"] for d in devs}) == 40
    assert all(d["mac"] == s.mac for d, s in zip(devs, specs, strict=True))
    rows = manager.ground_truth_rows(specs, plan)
    hosts = [r for r in rows if not r["parent_ip"]]
    chans = [r for r in rows if r["parent_ip"]]
    assert len(hosts) == 40 and chans, "fleets of 30+ hold NVRs with cameras on their PoE ports"
    assert list(rows[0])[:11] == list(manager.GROUND_TRUTH_KEYS)
    assert all(r["ip"] is None and r["netns"] is None for r in chans)
    assert {r["parent_ip"] for r in chans} <= {r["ip"] for r in hosts}
    text = "\n".join(json.dumps(r) for r in rows)
    assert not any(d["password"] in text for d in devs)
    assert "password" not in text and "username" not in text
    cp = configparser.ConfigParser(interpolation=None)
    cp.read_string(manager._credentials_text(plan))
    assert {s for s in cp.sections()} == {d["ip"] for d in devs}
    assert cp[devs[5]["ip"]]["password"] == devs[5]["password"]


def test_compare_with_ground_truth() -> None:
    truth = [
        {"ip": "198.18.0.2", "manufacturer": "Hikvision", "restricted": True, "parent_ip": None},
        {"ip": "198.18.0.3", "manufacturer": "Axis", "restricted": False, "parent_ip": None},
        {"ip": "198.18.0.4", "manufacturer": "Dahua", "restricted": True, "parent_ip": None},
        {"ip": None, "manufacturer": "Dahua", "restricted": True, "parent_ip": "198.18.0.4", "channel": 1},
        {"ip": "198.18.0.5", "manufacturer": None, "restricted": None, "parent_ip": None},
    ]
    found = [
        {"device_id": 1, "ip": "198.18.0.2", "manufacturer": "Hikvision", "restricted": True},
        {"device_id": 2, "ip": "198.18.0.3", "manufacturer": "Dahua", "restricted": True},
        {"device_id": 3, "ip": "198.18.0.4", "manufacturer": None, "restricted": None},
        {"device_id": 4, "ip": None, "parent_id": 3, "channel": "1", "manufacturer": "Dahua", "restricted": True},
    ]
    c = manager.compare_with_ground_truth(found, truth)
    assert c["devices"] == 5 and c["found"] == 4 and c["missed"] == ["198.18.0.5"]
    assert c["hosts"] == 4 and c["hosts_found"] == 3
    assert (c["manufacturer_right"], c["manufacturer_wrong"], c["manufacturer_null"]) == (2, 1, 1)
    assert (c["restricted_truth"], c["restricted_found"], c["false_alarms"]) == (3, 2, 1)


def test_sysctls_restored_only_by_the_last_holder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    values = {k: 1000 for k in nsmod.RAISED_SYSCTLS}
    monkeypatch.setattr(nsmod, "_read_sysctl", lambda k: values[k])
    monkeypatch.setattr(nsmod, "_write_sysctl_here", lambda k, v: values.__setitem__(k, int(v)))
    nsmod.hold_sysctls("a", tmp_path)
    assert values == nsmod.RAISED_SYSCTLS
    nsmod.hold_sysctls("b", tmp_path)
    assert nsmod.sysctl_holders(tmp_path) == ["a", "b"]
    assert nsmod.release_sysctls("a", tmp_path, live_prefixes=["b"]) == {}
    assert values == nsmod.RAISED_SYSCTLS, "b still holds them"
    restored = nsmod.release_sysctls("b", tmp_path, live_prefixes=[])
    assert restored and values == {k: 1000 for k in nsmod.RAISED_SYSCTLS}
    assert nsmod.sysctl_holders(tmp_path) == []
    # a holder that crashed (not live any more) does not keep them raised for ever
    nsmod.hold_sysctls("c", tmp_path)
    nsmod.hold_sysctls("d", tmp_path)
    nsmod.release_sysctls("d", tmp_path, live_prefixes=[])
    assert values == {k: 1000 for k in nsmod.RAISED_SYSCTLS}
    # a corrupt holders file is treated as empty, not a traceback
    (tmp_path / "sysctl-holders.json").write_text("{not json")
    assert nsmod.sysctl_holders(tmp_path) == []


def test_without_namespaces_up_says_so_and_offers_loopback(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(nsmod.os, "geteuid", lambda: 1000)
    assert "root" in (nsmod.netns_unavailable_reason() or "")

    def refuse(*a: object, loopback: bool = False, **kw: object) -> object:
        assert not loopback
        raise manager.LabUnavailable("network namespaces need root (running as uid 1000)")

    monkeypatch.setattr(manager, "up", refuse)
    assert main(["lab", "up", "--devices", "3"]) == 2
    err = capsys.readouterr().err
    assert "need root" in err and "--loopback" in err and "127.18.0" in err and "Traceback" not in err


def test_status_and_down_of_no_lab(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CAMSWEEP_LAB_STATE_DIR", str(tmp_path))
    assert main(["lab", "status", "--prefix", "cswnone"]) == 1
    assert "no lab 'cswnone' is up" in capsys.readouterr().err
    assert main(["lab", "down", "--prefix", "cswnone"]) == 0
    assert "nothing left over" in capsys.readouterr().out
    assert main(["lab", "up", "--prefix", "Bad Prefix"]) == 2
    assert "prefix" in capsys.readouterr().err


def test_corrupt_state_file_is_a_leftover_not_a_traceback(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    monkeypatch.setenv("CAMSWEEP_LAB_STATE_DIR", str(tmp_path))
    (tmp_path / "cswbad").mkdir()
    (tmp_path / "cswbad" / "state.json").write_text("[1, 2")
    assert manager.status("cswbad") is None
    rep = manager.down("cswbad")
    assert rep.found and not (tmp_path / "cswbad").exists()


def test_status_all_lists_labs_and_leftovers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CAMSWEEP_LAB_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(nsmod, "list_netns", lambda: ["cswx-br", "cswx-scan", "cswx-d0", "other", "cswy-d"])
    assert main(["lab", "status", "--all", "--json"]) == 0
    labs = json.loads(capsys.readouterr().out)
    assert [(x["prefix"], x["phase"], x["namespaces"]) for x in labs] == [("cswx", "leftover", 3)]
    assert main(["lab", "status", "--all"]) == 0
    assert re.search(r"^cswx\s+netns\s+leftover\s+no\s", capsys.readouterr().out, re.M)
