"""Issue 16 item 3: `--policy-file FILE`: your own lists of makers and brands (a citation each) and policies
combining them with the shipped lists; checked at load with `line N` errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fingerprints import load_database
from fingerprints import policy as pol
from fingerprints.db import Database
from fingerprints.policyfile import MAX_BYTES, apply, parse_policy_file, parse_policy_text
from scanner.cli import main
from scanner.errors import FingerprintError

GOOD = """\
lists:
  acme_exclusions:
    name: "ACME procurement exclusions"
    version: "2026-11-01"
    basis: policy
    cite: "https://intranet.example/policy/cctv-2026"
    makers:
      - {name: Axis, cite: "https://intranet.example/policy/cctv-2026#axis", since: "2026-11-01"}
    brands:
      - {name: Swann, cite: "https://intranet.example/policy/cctv-2026#swann"}
policies:
  acme:
    description: "section 889 plus ACME's own exclusions"
    lists: [ndaa889, acme_exclusions]
"""

BAD = """\
lists:
  ndaa889:
    name: x
  mine:
    name: "Mine"
    cite: "x"
    makers:
      - Foo
      - {name: NoSuchMakerXyz, cite: "y"}
      - {name: Lorex, cite: "z"}
      - {name: Axis}
policies:
  p1:
    lists: [mine, nosuch]
    owners: maybe
"""


@pytest.fixture
def db() -> Database:
    """A private database (the process's shared one must not see test policies)."""
    return Database()


def test_good_file_adds_lists_and_policy(db: Database) -> None:
    pf = parse_policy_text(GOOD, "acme.yaml", db)
    assert set(pf.lists) == {"acme_exclusions"} and set(pf.policies) == {"acme"}
    assert set(pf.lists["acme_exclusions"]["covers"]) == {"axis", "swann"}
    apply(db, pf)
    assert pol.restricted_under(db, "acme", "axis")[0] is True
    assert pol.brand_covered(db, "acme", "swann")[0] is True
    assert pol.restricted_under(db, "ndaa889", "axis")[0] is False  # shipped policies unchanged
    info = pol.policy_info(db, "acme")
    assert info["source"] == "acme.yaml"
    acme = next(x for x in info["lists"] if x["id"] == "acme_exclusions")
    assert acme["version"] == "2026-11-01" and acme["basis"] == "policy" and acme["cite"]
    basis = pol.flag_basis(db, "acme", "axis", "axis")
    assert basis[0]["list"] == "acme_exclusions" and "intranet.example/policy/cctv-2026#axis" in basis[0]["cite"][0]


def test_bad_file_reports_every_problem_with_its_line(db: Database) -> None:
    with pytest.raises(FingerprintError) as exc:
        parse_policy_text(BAD, "bad.yaml", db)
    lines = str(exc.value).splitlines()
    want = {
        2: "is a shipped list",
        4: "no version",
        8: "'Foo' has no citation",
        9: "'NoSuchMakerXyz' is not in camsweep's vendor registry",
        10: "'Lorex' is a label (an OEM brand), not a device maker: list it under brands",
        11: "'Axis' has no cite",
        14: "unknown list 'nosuch'",
        15: "owners must be true or false",
    }
    for n, text in want.items():
        assert any(x.startswith(f"bad.yaml line {n}: ") and text in x for x in lines), (n, lines)
    assert [int(x.split(" line ")[1].split(":")[0]) for x in lines] == sorted(
        int(x.split(" line ")[1].split(":")[0]) for x in lines)
    assert "acme" not in db.policies()  # nothing added


@pytest.mark.parametrize("text, line, words", [
    ("lists: [\n", 2, "not valid YAML"),
    ("lists:\n  a:\n    name: x\n   bad indent: 1\n", 4, "not valid YAML"),
    ("x: &a [1]\ny: *a\nlists: {}\n", 2, "aliases"),
    ("lists:\n  l:\n    name: !!python/object:os.system x\n", 3, "tag"),
    ("", 1, "empty"),
    ("- 1\n- 2\n", 1, "must be a mapping"),
    ("lists:\n  l:\n    name: n\n    version: yesterday\n    cite: c\n    makers: [{name: Axis, cite: c}]\n",
     4, "must be a date"),
    ("policies:\n  ndaa889:\n    lists: [ndaa889]\n", 2, "shipped policy"),
])
def test_malformed_files_name_the_line(db: Database, text: str, line: int, words: str) -> None:
    with pytest.raises(FingerprintError) as exc:
        parse_policy_text(text, "f.yaml", db)
    assert f"f.yaml line {line}: " in str(exc.value) and words in str(exc.value), str(exc.value)


def test_file_limits(tmp_path: Path, db: Database) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_BYTES + 10))
    with pytest.raises(FingerprintError, match="larger than"):
        parse_policy_file(big, db)
    with pytest.raises(FingerprintError, match="cannot read"):
        parse_policy_file(tmp_path / "missing.yaml", db)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"lists:\n  a: \xff\n")
    with pytest.raises(FingerprintError, match="line 2: not UTF-8"):
        parse_policy_file(latin, db)
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    with pytest.raises(FingerprintError, match="aliases"):
        parse_policy_text(bomb, "bomb.yaml", db)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(
    st.text(max_size=400),
    st.lists(st.sampled_from(["lists:", "policies:", "  a:", "    name: x", "    cite: y", "    version: 2026-01-01",
                              "    makers:", "      - {name: Axis, cite: c}", "      - Axis", "    brands: [1]",
                              "  p:", "    lists: [a, ndaa889]", "    owners: true", "- x", "&a", "*a", ": :", "\t",
                              "    basis: law", "      - {name: Swann, cite: [a, b]}"]), max_size=30).map("\n".join),
))
def test_parser_never_raises_anything_else(db: Database, text: str) -> None:
    try:
        pf = parse_policy_text(text, "h.yaml", db)
    except FingerprintError as exc:
        assert str(exc).startswith("h.yaml")
        return
    assert pf.lists or pf.policies
    for spec in pf.lists.values():
        assert spec["cite"] and spec["version"] and spec["covers"]
        assert all(e.get("cite") for e in spec["covers"].values())


def test_cli_policy_file_flags_the_added_maker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "acme.yaml"
    f.write_text(GOOD)
    src = tmp_path / "r.jsonl"
    src.write_text(json.dumps({"id": "axis", "mac": "00:40:8c:01:02:03",
                               "http": [{"port": 80, "headers": {"Server": "axis"}}]}) + "\n")
    capsys.readouterr()
    shared = load_database()
    try:
        assert main(["identify", str(src), "--format", "jsonl", "--policy-file", str(f), "--policy", "acme"]) == 0
        d = json.loads(capsys.readouterr().out)
        assert d["restricted"] is True and d["lists"][0] == "acme_exclusions"
        bad = tmp_path / "bad.yaml"
        bad.write_text(BAD)
        assert main(["identify", str(src), "--policy-file", str(bad), "--policy", "acme"]) == 2
        err = capsys.readouterr().err
        assert f"{bad} line 9: " in err and "Traceback" not in err
    finally:  # the CLI installs into the process's database: take the test's lists back out
        shared.lists.pop("acme_exclusions", None)
        shared._policies.pop("acme", None)
        shared._policy_cache = {}
        type(shared).lists_for.cache_clear()
