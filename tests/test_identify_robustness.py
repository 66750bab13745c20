"""Identification must not be fooled by what a scan sees on hostile or unusual devices."""

from scanner.evidence import parse_record
from scanner.identify import Identifier

LOGIN = "<html><head><title>Login</title></head><body>welcome</body></html>"


def _ident(rec: dict):
    return Identifier().identify(parse_record(rec))


def test_a_vendor_path_answered_alone_is_a_hint_of_its_maker():
    res = _ident({"ip": "198.18.0.9", "http": [{"port": 80, "path": "/doc/page/login.asp", "status": 200,
                                                 "body": LOGIN}]})
    # one weak clue: not a verdict, but it points at a restricted maker (issue 12)
    assert res.manufacturer is None and res.restricted is None
    assert res.review and res.review["maker"] == "Hikvision"


def test_a_catch_all_web_server_proves_no_maker_by_its_paths():
    # answers 200 with the same page to every vendor path it is asked for
    rec = {"ip": "198.18.0.9", "http": [
        {"port": 80, "path": "/", "status": 200, "body": LOGIN},
        {"port": 80, "path": "/doc/page/login.asp", "status": 200, "body": LOGIN},
        {"port": 80, "path": "/cgi-bin/magicBox.cgi?action=getSystemInfo", "status": 200, "body": LOGIN},
    ]}
    res = _ident(rec)
    assert res.manufacturer is None and res.restricted is None
    assert not any(e.field == "http.path_ok" for e in res.evidence)


def test_the_scanners_canary_path_answered_marks_a_catch_all():
    rec = {"ip": "198.18.0.9", "http": [
        {"port": 80, "path": "/doc/page/login.asp", "status": 200, "body": LOGIN},
        {"port": 80, "path": "/camsweep-3f9a1c0b7e", "status": 200, "body": "<html>other</html>"},
    ]}
    assert _ident(rec).manufacturer is None


def test_a_numeric_device_class_code_is_not_reported_as_the_model():
    # SADP's DeviceType is a class code; an LTS unit's model is in DeviceDescription
    rec = {"ip": "198.18.0.9", "mac": "44:19:b6:40:00:02", "discovery": [
        {"protocol": "sadp", "fields": {"DeviceType": "138", "DeviceDescription": "CMIP7442NW-28M",
                                        "DeviceSN": "CMIP7442NW-28M20230101AAWRJ12345678"}}]}
    res = _ident(rec)
    assert res.manufacturer == "Hikvision"
    assert res.model != "138"
