"""Vendor registry, restriction lists and policy profiles."""

from __future__ import annotations

from fingerprints import load_database

DB = load_database()
NDAA = {"hikvision", "dahua", "huawei", "zte", "hytera"}


def test_ndaa889_covers_the_five_named_makers_and_their_subsidiaries() -> None:
    assert set(DB.lists["ndaa889"]["covers"]) == NDAA
    for vid in ("ezviz", "hikmicro", "hilook", "prama_hikvision", "imou", "hisilicon"):
        assert "ndaa889" in DB.lists_for(vid), vid
    for vid in ("uniview", "tiandy", "kedacom", "infinova", "axis", "honor", "reolink"):
        assert "ndaa889" not in DB.lists_for(vid), vid


def test_every_list_has_coverage_and_citation() -> None:
    for lid in ("ndaa889", "fcc_covered", "entity_list", "dod_1260h", "uk_sensitive_sites", "taiwan_gov"):
        spec = DB.lists[lid]
        assert spec["name"] and spec["cite"]
        assert spec.get("covers") or spec.get("origin")


def test_entity_list_names_the_strict_makers_with_dates() -> None:
    covers = DB.lists["entity_list"]["covers"]
    assert covers["uniview"]["since"] == "2024-12-10"
    assert covers["tiandy"]["since"] == "2022-12-15"
    assert covers["kedacom"]["since"].startswith("2021-07")


def test_policies() -> None:
    assert DB.default_policy == "ndaa889"
    assert {"ndaa889", "fcc", "strict"} <= set(DB.policies())
    assert "entity_list" in DB.policy("strict")["lists"]


def test_oem_brands_are_labels_with_relations() -> None:
    for vid, maker in (("amcrest", "dahua"), ("lorex", "dahua"), ("annke", "hikvision"), ("lts", "hikvision")):
        v = DB.vendors[vid]
        assert v.kind == "oem_brand"
        assert maker in {o["maker"] for o in v.oem}
    assert "2018" in DB.vendors["lorex"].oem[0]["era"]


def test_subsidiaries_report_their_group() -> None:
    assert DB.vendors["ezviz"].group == "hikvision"
    assert DB.vendors["imou"].group == "dahua"
    assert DB.vendors["hisilicon"].group == "huawei"
    assert DB.vendors["honor"].group == "honor"
