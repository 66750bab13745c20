"""Every rule loads, and every example of every rule is a test (recog style)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fingerprints.db import HERE, Database, load_database
from scanner.errors import FingerprintError

DB = load_database()
CASES = [(rule, ex) for rule in DB.rules for ex in rule.examples]


def test_rules_loaded_from_every_family() -> None:
    families = {r.family for r in DB.rules}
    assert {"http", "rtsp", "wsd", "model", "firmware", "serial", "name", "ssdp", "mdns", "tls", "banner", "dhcp",
            "discovery"} <= families
    assert len(DB.rules) >= 100


def _claims(db: Database, vendors: tuple[str, ...]) -> set[str]:
    """The maker groups a match asserts (OEM brands assert none: they are labels)."""
    out = set()
    for vid in vendors:
        v = db.vendors[vid]
        if v.kind not in ("oem_brand", "component_maker"):
            out.add(v.group)
    return out


@pytest.mark.parametrize("rule,example", CASES, ids=[f"{r.id}:{e['value'][:30]}" for r, e in CASES])
def test_no_other_rule_shadows_or_contradicts(rule, example) -> None:
    """No other rule on the same field matches the example and names a different maker; and no
    earlier rule of the same field makes this one redundant by asserting the same thing on it."""
    own = DB.match_rule(rule, example["value"])
    own_claims = _claims(DB, own.vendors)
    for f in rule.fields:
        for other in DB.index.get(f, []):
            if other is rule:
                continue
            m = DB.match_rule(other, example["value"])
            if m is None:
                continue
            other_claims = _claims(DB, m.vendors)
            if own_claims and other_claims:
                assert other_claims == own_claims, (
                    f"{other.id} contradicts {rule.id} on {example['value']!r}: {other_claims} vs {own_claims}")


def test_known_lookalikes_are_not_matched() -> None:
    assert DB.lookup_names("Hipcam RealServer") == ("hipcam",)
    assert DB.lookup_names("IPCAM") == ()
    assert "hikvision" not in DB.lookup_names("HiSilicon")
    assert DB.lookup_names("Shanghai Dahua Scale Factory") == ()
    assert DB.lookup_names("EmpireTech/Dahua") == ("empiretech", "dahua")


def _copy_db(tmp_path: Path) -> Path:
    root = tmp_path / "fp"
    shutil.copytree(HERE, root, ignore=shutil.ignore_patterns("__pycache__", "*.py", "data"))
    return root


def _write_rule(root: Path, body: str) -> None:
    (root / "rules" / "zz_test.yaml").write_text("family: test\nrules:\n" + body)


@pytest.mark.parametrize(("body", "message"), [
    pytest.param("  - id: bare\n    field: [http.headers.server]\n    pattern: '^Foo'\n    vendor: axis\n",
                 "no examples", id="without-example"),
    pytest.param("  - id: empty\n    field: [http.title]\n    pattern: 'x*'\n    vendor: axis\n"
                 "    examples: [{value: xx}]\n", "empty string", id="matches-empty-string"),
    pytest.param("  - id: wrong\n    field: [http.title]\n    pattern: '^Foo$'\n    vendor: axis\n"
                 "    examples: [{value: Bar}]\n", "does not match its own example", id="example-does-not-match"),
    pytest.param("  - id: extract\n    field: ['@model']\n    pattern: '^(?P<model>X\\d+)'\n    vendor: axis\n"
                 "    examples: [{value: X12, extract: {model: X13}}]\n", "extracts model", id="wrong-extract"),
    pytest.param("  - id: v\n    field: [http.title]\n    pattern: '^Foo'\n    vendor: nosuch\n"
                 "    examples: [{value: Foo}]\n", "unknown vendor", id="unknown-vendor"),
    pytest.param("  - id: r\n    field: [http.title]\n    pattern: '^(Foo'\n    vendor: axis\n"
                 "    examples: [{value: Foo}]\n", "does not compile", id="bad-regex"),
])
def test_bad_rule_is_refused(tmp_path: Path, body: str, message: str) -> None:
    root = _copy_db(tmp_path)
    _write_rule(root, body)
    with pytest.raises(FingerprintError, match=message):
        Database(root)


@pytest.mark.parametrize("rule", [r for r in DB.rules if r.regex is not None], ids=lambda r: r.id)
def test_no_catastrophic_backtracking(rule) -> None:
    """Each pattern over capped hostile values (its own examples repeated, near-misses, filler) stays fast."""
    import time

    samples = ["a" * rule.cap, " " * rule.cap]
    for ex in rule.examples:
        v = ex["value"]
        samples.append((v * (rule.cap // max(len(v), 1) + 1))[: rule.cap])
        samples.append((v[:-1] * (rule.cap // max(len(v), 1) + 1))[: rule.cap])
    t0 = time.perf_counter()
    for s in samples:
        rule.regex.search(s, 0, rule.cap)
    assert time.perf_counter() - t0 < 0.5, rule.id
