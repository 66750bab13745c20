"""The OEM directory in the vendor registry: every row loads with its citation; labels stay labels."""

from __future__ import annotations

import gzip
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from fingerprints import load_database
from fingerprints.db import CONFIDENCES, HERE, OEM_RELATIONS, Database, norm_registrant
from scanner.errors import FingerprintError
from scanner.identify import identify_record

DB = load_database()
ROOT = Path(__file__).resolve().parents[2]
_SHARED = [ROOT.parent / "shared"] + ([Path(os.environ["CAMSWEEP_SHARED"])] if os.environ.get("CAMSWEEP_SHARED") else [])
DIRECTORY = next((p / "reference" / "oem-directory.yaml" for p in _SHARED
                  if (p / "reference" / "oem-directory.yaml").is_file()), None)
# rows the directory calls subsidiary/brand that the registry keeps as labels (vendors.yaml OEM header)
LABELS_NOT_OWNED = {"lorex", "digimerge", "lincx2pro"}


def _maker_id(maker: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", maker.lower()) if maker.startswith("other:") else maker


def _vendor_for(brand: str) -> str:
    base = re.sub(r"\s*\(.*?\)", "", brand)
    base = re.sub(r"\s+-\s.*$", "", base).strip()
    found = DB.lookup_names(base)
    assert found, f"directory brand {brand!r} ({base!r}) names no vendor"
    return found[0]


def _check_row(row: dict) -> None:
    vid = _vendor_for(row["brand"])
    v = DB.vendors[vid]
    maker = _maker_id(row["maker"])
    cites = set(row["cite"])
    assert cites, row["brand"]
    if row["relation"] in ("subsidiary", "brand") and vid not in LABELS_NOT_OWNED:
        assert v.kind == row["relation"], (vid, v.kind)
        assert v.group == maker and v.parent == maker, (vid, v.parent)
        assert cites <= set(v.cite), f"{vid}: cites missing {cites - set(v.cite)}"
        assert v.confidence == row["confidence"], vid
        return
    matches = [o for o in v.oem if o["maker"] == maker and cites <= set(o["cite"])
               and o["confidence"] == row["confidence"] and o["era"] == row["era"]]
    assert matches, f"{row['brand']!r}: no oem entry {maker}/{row['confidence']} on {vid} with cites {cites}"
    want = row["relation"] if row["relation"] in OEM_RELATIONS else "oem"
    assert matches[0]["relation"] == want, (vid, matches[0]["relation"], row["relation"])
    assert matches[0]["product_lines"] == row["product_lines"], vid


@pytest.mark.skipif(DIRECTORY is None, reason="../shared/reference/oem-directory.yaml not present")
def test_every_directory_row_loads_with_its_citation() -> None:
    rows = yaml.safe_load(DIRECTORY.read_text(encoding="utf-8"))
    assert len(rows) >= 75
    for row in rows:
        _check_row(row)


# ------------------------------------------------------------------ shipped data (no ../shared needed)
def _oem_entries() -> list[tuple[str, dict]]:
    return [(vid, o) for vid, v in DB.vendors.items() for o in v.oem]


def test_every_oem_entry_is_complete_and_cited() -> None:
    entries = _oem_entries()
    assert len(entries) >= 68
    for vid, o in entries:
        assert set(o) == {"maker", "relation", "confidence", "era", "product_lines", "cite", "note"}, vid
        assert o["relation"] in OEM_RELATIONS and o["confidence"] in CONFIDENCES, vid
        assert o["cite"] and all(isinstance(c, str) and c for c in o["cite"]), vid
        assert DB.vendors[o["maker"]].kind in ("maker", "subsidiary", "brand"), vid
    for v in DB.vendors.values():
        if v.kind in ("subsidiary", "brand"):
            assert v.cite and v.parent, v.id


def test_directory_relations_in_the_shipped_registry() -> None:
    lts = {(o["maker"], o["confidence"]) for o in DB.vendors["lts"].oem}
    assert lts == {("hikvision", "high"), ("dahua", "low")}  # a brand with two makers: two entries
    alibi = {o["maker"] for o in DB.vendors["alibi"].oem}
    assert alibi == {"hikvision", "dahua", "uniview"}
    lorex = DB.vendors["lorex"]
    assert lorex.kind == "oem_brand" and lorex.oem[0]["maker"] == "dahua" and "2022-11-24" in lorex.oem[0]["era"]
    assert "LR" in lorex.oem[0]["note"]
    assert DB.vendors["holowits"].kind == "brand" and DB.vendors["holowits"].group == "huawei"
    assert DB.vendors["hiwatch"].confidence == "medium" and DB.vendors["ezviz"].confidence == "high"
    # a maker that some sources say sourced elsewhere stays a maker
    bosch = DB.vendors["bosch"]
    assert bosch.kind == "maker" and bosch.oem[0]["maker"] == "other_hikvision_or_dahua"
    assert bosch.oem[0]["confidence"] == "low"
    assert DB.vendors["other_hikvision_or_dahua"].members == ("hikvision", "dahua")
    assert {o["maker"] for o in DB.vendors["asecam"].oem} == {"xiongmai"}
    assert DB.vendors["aventura"].oem[0]["maker"] == "other_unnamed_prc_manufacturers"
    by_conf = {c: sum(o["confidence"] == c for _, o in _oem_entries()) for c in CONFIDENCES}
    assert by_conf["high"] >= 8 and by_conf["medium"] >= 20 and by_conf["low"] >= 30


def _registry() -> dict[str, str]:
    out = {}
    with gzip.open(HERE / "data" / "oui.tsv.gz", "rt", encoding="utf-8") as f:
        for line in f:
            if not line.startswith("#"):
                prefix, _, org = line.rstrip("\n").split("\t")[:3]
                out.setdefault(org, prefix)
    return out


def test_oem_label_mac_blocks_name_the_label_never_the_maker() -> None:
    """Every OEM label's registrant pattern that matches an IEEE block maps to the label, with no maker."""
    registry = _registry()
    seen = set()
    for org, prefix in registry.items():
        vid = DB.vendor_for_registrant(org)
        if vid is None or DB.vendors[vid].kind != "oem_brand":
            continue
        seen.add(vid)
        mac = (prefix + "0" * 12)[:12]
        assert DB.lookup_oui(mac) == (org, None), (vid, org)
    assert {"lorex", "swann", "nightowl", "amcrest", "lts", "ic_realtime", "alibi", "advidia", "abus",
            "cpplus", "kbvision", "watchnet", "digimerge", "aventura", "indigovision"} <= seen


def test_registrant_patterns_do_not_catch_look_alikes() -> None:
    assert DB.vendor_for_registrant("Jorex Technology Co.") is None
    assert DB.vendor_for_registrant("Beijing Neutron Technology CO.,LTD.") is None  # not the Turkish Neutron
    assert DB.vendor_for_registrant("GSS Grundig SAT-Systems GmbH") is None
    assert DB.vendor_for_registrant("Shenzhen Kezhonglong Optoelectronic Technology Co., Ltd") == "module_makers"
    assert norm_registrant("LT SECURITY INC") == "lt security inc" and DB.vendor_for_registrant("LT SECURITY INC") == "lts"


# ------------------------------------------------------------------ identify: labels stay labels
@pytest.mark.parametrize("mac,brand", [("bc:51:fe:12:34:56", "Swann"), ("00:1f:54:12:34:56", "Lorex"),
                                       ("54:2b:57:12:34:56", "Night Owl"), ("9c:8e:cd:12:34:56", "Amcrest"),
                                       ("14:2f:fd:12:34:56", "LTS"), ("20:de:88:12:34:56", "IC Realtime")])
def test_registrant_only_mac_of_an_oem_label_sets_the_brand_not_the_maker(mac: str, brand: str) -> None:
    r = identify_record({"id": "x", "mac": mac})
    assert r.brand == brand
    assert r.manufacturer is None and r.restricted is None


@pytest.mark.parametrize("mac", ["5c:ff:ff:12:34:56", "04:39:26:12:34:56"])
def test_registrant_only_mac_of_a_board_maker_names_no_maker(mac: str) -> None:
    r = identify_record({"id": "x", "mac": mac})
    assert r.manufacturer is None and r.restricted is None and r.brand is None
    assert any(e.rule == "oui/module_makers" for e in r.evidence)  # reported, but names no maker


def test_oem_label_mac_beside_maker_firmware_is_a_relabel() -> None:
    r = identify_record({"id": "x", "mac": "00:1f:54:12:34:56",
                         "onvif": {"model": "E891AB", "firmware": "2.622.00LR000.10.R"}})
    assert (r.manufacturer, r.brand, r.restricted) == ("Dahua", "Lorex", True)


def test_model_line_sets_the_label_and_points_at_the_maker() -> None:
    r = identify_record({"id": "x", "onvif": {"model": "CMIP8242WB", "firmware": "V5.4.0 build 160811"}})
    assert (r.manufacturer, r.brand) == ("Hikvision", "LTS")
    assert any(e.rule == "oem/lts-cmip-camera" and e.strength == "weak" for e in r.evidence)
    r = identify_record({"id": "x", "onvif": {"model": "LTN6416"}})  # a multi-ODM line: the label only
    assert r.brand == "LTS" and r.manufacturer is None
    r = identify_record({"id": "x", "onvif": {"model": "PT-NRAS2B32-K4"}})  # a subsidiary's line names the group
    assert (r.manufacturer, r.brand) == ("Hikvision", "Prama Hikvision")


# ------------------------------------------------------------------ the loader refuses bad relations
def _db_with(tmp_path: Path, entry: str) -> Database:
    root = tmp_path / "fp"
    shutil.copytree(HERE, root, ignore=shutil.ignore_patterns("__pycache__", "*.py", "data"))
    text = (root / "vendors.yaml").read_text(encoding="utf-8")
    (root / "vendors.yaml").write_text(text.rstrip("\n") + "\n" + entry, encoding="utf-8")
    return Database(root)


@pytest.mark.parametrize("entry,message", [
    ("  - {id: zz, name: ZZ, kind: oem_brand, oem: [{maker: dahua, relation: subsidiary, confidence: high, cite: x}]}\n",
     "unknown relation 'subsidiary'"),
    ("  - {id: zz, name: ZZ, kind: oem_brand, oem: [{maker: dahua, relation: oem, confidence: certain, cite: x}]}\n",
     "unknown or missing confidence 'certain'"),
    ("  - {id: zz, name: ZZ, kind: oem_brand, oem: [{maker: dahua, relation: oem, confidence: low}]}\n", "no cite"),
    ("  - {id: zz, name: ZZ, kind: oem_brand, oem: [{maker: dahua, relation: oem, confidence: low, cite: []}]}\n",
     "no cite"),
    ("  - {id: zz, name: ZZ, kind: oem_brand, oem: [{maker: dahua, confidence: low, cite: x}]}\n",
     "unknown relation None"),
    ("  - {id: zz, name: ZZ, kind: oem_brand, oem: [{maker: dahua, relation: oem, confidence: low, cite: x, "
     "sure: true}]}\n", "unknown key"),
    ("  - {id: zz, name: ZZ, kind: oem_brand, oem: [{maker: amcrest, relation: oem, confidence: low, cite: x}]}\n",
     "is a oem_brand, not a maker"),
    ("  - {id: zz, name: ZZ, kind: oem_brand, oem: [{maker: nosuch, relation: oem, confidence: low, cite: x}]}\n",
     "OEM maker 'nosuch' unknown"),
    ("  - {id: zz, name: ZZ, kind: subsidiary, parent: dahua}\n", "needs a cite"),
    ("  - {id: zz, name: ZZ, kind: brand, cite: [x]}\n", "needs a parent"),
    ("  - {id: zz, name: ZZ, kind: brand, parent: dahua, cite: [x], confidence: sure}\n", "unknown confidence"),
])
def test_loader_refuses_bad_oem_relations(tmp_path: Path, entry: str, message: str) -> None:
    with pytest.raises(FingerprintError, match=re.escape(message)):
        _db_with(tmp_path, entry)


def test_loader_accepts_a_well_formed_entry(tmp_path: Path) -> None:
    db = _db_with(tmp_path, "  - {id: zz, name: ZZ, kind: oem_brand, oem: [{maker: dahua, relation: white-label, "
                            "confidence: medium, cite: 'https://example.invalid/zz'}]}\n")
    o = db.vendors["zz"].oem[0]
    assert o == {"maker": "dahua", "relation": "white-label", "confidence": "medium", "era": "",
                 "product_lines": [], "cite": ["https://example.invalid/zz"], "note": ""}
