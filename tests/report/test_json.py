from __future__ import annotations

import copy
import json

import jsonschema
import pytest

from scanner.report import build_report_model, render_report
from scanner.report.json import load_schema
from tests.report.sample import HOSTILE_SERVER, HOSTILE_TITLE


def _validator():
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def test_report_validates_against_schema(sample):
    store, scan_id, _, _ = sample
    text = render_report(build_report_model(store, scan_id), "json")
    doc = json.loads(text)
    _validator().validate(doc)
    assert doc["schema_version"].startswith("1.")
    assert load_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_json_keeps_device_text_exactly_and_is_terminal_safe(sample):
    store, scan_id, ids, _ = sample
    text = render_report(build_report_model(store, scan_id), "json")
    assert text.isascii() and "\x1b" not in text and "\x07" not in text
    doc = json.loads(text)
    hostile = next(d for d in doc["devices"] if d["device_id"] == ids["hostile"])
    assert [e["value"] for e in hostile["evidence"][:2]] == [HOSTILE_SERVER, HOSTILE_TITLE]


@pytest.mark.parametrize("breakage", [
    lambda d: d["devices"][0].__setitem__("restricted", "yes"),
    lambda d: d["summary"].pop("restricted"),
    lambda d: d.__setitem__("schema_version", "2.0"),
    lambda d: d["devices"][0].__setitem__("mac", "not-a-mac"),
    lambda d: d["plan"]["rows"][0].__setitem__("status", "lost"),
])
def test_schema_rejects_broken_reports(sample, breakage):
    store, scan_id, _, _ = sample
    doc = json.loads(render_report(build_report_model(store, scan_id), "json"))
    bad = copy.deepcopy(doc)
    breakage(bad)
    with pytest.raises(jsonschema.ValidationError):
        _validator().validate(bad)


def test_empty_scan_validates(tmp_path):
    from scanner.store import Store

    store = Store(tmp_path / "e.db")
    sid = store.start_scan(["198.18.5.0/24"], site=None)
    store.finish_scan(sid)
    doc = json.loads(render_report(build_report_model(store, sid), "json"))
    _validator().validate(doc)
    assert doc["summary"]["devices"] == 0 and doc["devices"] == [] and doc["plan"]["rows"] == []
    store.close()
