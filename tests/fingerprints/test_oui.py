"""The IEEE MAC registry table: builder, longest-prefix lookup, registrant -> maker mapping."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from fingerprints import load_database
from fingerprints.oui import OuiTable, build_table, parse_source, write_table
from scanner.errors import FingerprintError

DB = load_database()
REF = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "ouis-2026-03.tsv"

CSV = ("Registry,Assignment,Organization Name,Organization Address\n"
       "MA-L,AABBCC,Big Block Maker Co.,Somewhere\n"
       "MA-M,AABBCC1,Middle Block GmbH,\"Street 1, Town\"\n"
       "MA-S,AABBCC123,Small Block Ltd,x\n")


def test_longest_prefix_wins(tmp_path: Path) -> None:
    table = build_table([parse_source(CSV, "t.csv")])
    out = tmp_path / "t.tsv.gz"
    write_table(table, out, ["t.csv"])
    t = OuiTable.load(out)
    assert t.lookup("AABBCC123456") == "Small Block Ltd"
    assert t.lookup("AABBCC1FFFFF") == "Middle Block GmbH"
    assert t.lookup("AABBCC9FFFFF") == "Big Block Maker Co."
    assert t.lookup("001122334455") is None
    assert gzip.open(out, "rt").readline().startswith("# camsweep")


def test_bad_sources_are_refused_with_a_message() -> None:
    with pytest.raises(FingerprintError, match="unrecognised format"):
        parse_source("hello world\n", "x.txt")
    with pytest.raises(FingerprintError, match="not an IEEE registry CSV"):
        parse_source("Registry,Foo,Bar\nMA-L,1,2\n", "x.csv")


def test_shipped_table_is_complete_and_compact() -> None:
    assert DB.oui.size > 45000
    sizes = {n: len(d) for n, d in DB.oui.by_len.items()}
    assert sizes[6] > 30000 and sizes[7] > 4000 and sizes[9] > 9000
    assert (Path(__file__).resolve().parents[2] / "fingerprints" / "data" / "oui.tsv.gz").stat().st_size < 3_000_000


@pytest.mark.parametrize("mac,registrant,maker", [
    ("28:57:be:01:02:03", "Hangzhou Hikvision", "Hikvision"),
    ("0c:a6:4c:00:00:01", "Ezviz", "Hikvision"),
    ("a4:4c:62:00:00:01", "Microimage", "Hikvision"),
    ("30:dd:aa:00:00:01", "DAHUA TECHNOLOGYCO", "Dahua"),
    ("40:2c:76:1a:bc:de", "Shanghai Dahua Scale Factory", None),   # MA-M inside an IEEE-RA MA-L
    ("80:7b:85:3a:bc:de", "Zhuhai TOP", None),                      # 'Huawei Road' is only the address
    ("0c:b9:83:00:00:01", "Honor", "Honor"),
    ("bc:51:fe:00:00:01", "Swann", None),                           # OEM brand: the label, not the maker
])
def test_registrant_mapping(mac: str, registrant: str, maker: str | None) -> None:
    found = DB.lookup_oui(mac)
    assert found is not None and registrant.lower() in found[0].lower()
    assert found[1] == maker


def test_every_reference_row_maps_as_the_reference_groups_it() -> None:
    """ouis-2026-03.tsv groups its rows (Hikvision, Dahua, LOOKALIKE, NEG...); the registrant patterns
    in vendors.yaml must agree with every row without knowing the grouping."""
    if not REF.is_file():
        pytest.skip("shared reference not present")
    restricted_groups = {"hikvision", "dahua", "huawei", "zte", "hytera"}
    wrong = []
    for line in REF.read_text().splitlines()[1:]:
        group, prefix, org, _ = line.split("\t", 3)
        org = org.replace(" [nmap short form]", "")
        vid = DB.vendor_for_registrant(org)
        maker = DB.vendors[vid].group if vid else None
        g = group.lower()
        if g.startswith(("lookalike", "neg", "oem-brand")):
            ok = maker not in restricted_groups
        else:
            want = {"hikvision": "hikvision", "ezviz": "hikvision", "dahua": "dahua", "huawei": "huawei",
                    "zte": "zte", "hytera": "hytera", "uniview": "uniview", "tiandy": "tiandy",
                    "kedacom": "kedacom", "infinova": "infinova"}[g.split()[0]]
            ok = maker == want
        if not ok:
            wrong.append((group, prefix, org, maker))
    assert not wrong, wrong[:10]


def test_oui_update_command(tmp_path: Path) -> None:
    src = tmp_path / "oui.csv"
    src.write_text(CSV)
    out = tmp_path / "table.tsv.gz"
    r = subprocess.run([sys.executable, "-m", "scanner.cli", "oui", "update", "--fresh", "--output", str(out),
                        str(src)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert OuiTable.load(out).lookup("AABBCC123000") == "Small Block Ltd"
    r = subprocess.run([sys.executable, "-m", "scanner.cli", "oui", "update", "--output", str(out),
                        str(tmp_path / "missing.csv")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "cannot read" in r.stderr and "Traceback" not in r.stderr
