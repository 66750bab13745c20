"""The shared labelled corpus, scored as score-corpus scores it; the misses are printed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from scanner.identify import Identifier

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "labelled.jsonl"
SCORER = ROOT.parent / "shared" / "tools" / "score-corpus"

pytestmark = pytest.mark.skipif(not CORPUS.is_file(), reason="shared corpus not present")


def _norm(s: str | None) -> str:
    return re.sub(r"[^a-z0-9]", "", (s or "").lower())


def _same(pred: str | None, exp: str | None) -> bool:
    """score-corpus's comparison, condensed: equal names, known aliases, or a token run of the other."""
    p, e = _norm(pred), _norm(exp)
    if not p:
        return False
    aliases = {"hanwhavision": {"hanwha", "wisenet", "samsungtechwin"}, "ipro": {"panasonic"},
               "teledyneflir": {"flir"}, "avigilon": {"motorolasolutions"}, "google": {"nest"}}
    if p == e or p in aliases.get(e, ()):
        return True
    if "scale" in e or "scale" in p:
        return False
    tp, te = re.findall(r"[a-z0-9]+", pred.lower()), re.findall(r"[a-z0-9]+", (exp or "").lower())
    short, long_ = sorted((tp, te), key=len)
    n = len(short)
    return n > 0 and len("".join(short)) >= 4 and any(long_[i:i + n] == short for i in range(len(long_) - n + 1))


def test_corpus_figures() -> None:
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    idf = Identifier()
    r_tot = r_hit = ff = acc_tot = acc_hit = u_tot = u_hit = 0
    misses = []
    for row in rows:
        e = row["expected"]
        got = idf.identify(row["record"])
        rid = row["record"]["id"]
        assert got.id == rid
        if e["identifiable"]:
            acc_tot += 1
            if _same(got.manufacturer, e["manufacturer"]):
                acc_hit += 1
            else:
                misses.append(f"maker {rid}: expected {e['manufacturer']}, got {got.manufacturer}")
            if e["restricted"] is True:
                r_tot += 1
                if got.restricted is True:
                    r_hit += 1
                else:
                    misses.append(f"not flagged {rid}: got {got.manufacturer}")
        else:
            u_tot += 1
            if got.manufacturer is None or _same(got.manufacturer, e["manufacturer"] or ""):
                u_hit += 1
            else:
                misses.append(f"guessed {rid}: got {got.manufacturer}")
        if e["restricted"] is False and got.restricted is True:
            ff += 1
            misses.append(f"FALSE FLAG {rid}: got {got.manufacturer}")
    print(f"\nrestricted recall {r_hit}/{r_tot}; false flags {ff}; maker accuracy {acc_hit}/{acc_tot}; "
          f"unknown discipline {u_hit}/{u_tot}")
    for m in misses:
        print("  miss:", m)
    assert r_tot > 30 and r_hit == r_tot
    assert ff == 0
    assert acc_hit / acc_tot >= 0.95
    assert u_hit == u_tot


def test_results_carry_an_evidence_chain() -> None:
    idf = Identifier()
    for line in CORPUS.read_text().splitlines():
        row = json.loads(line)
        got = idf.identify(row["record"])
        assert not any(n.startswith(("identification failed", "unreadable")) for n in got.notes), got.notes
        if got.manufacturer:
            assert got.evidence, row["record"]["id"]
            assert 0 < got.confidence < 1
        d = got.to_dict()
        assert set(d) >= {"id", "manufacturer", "brand", "model", "restricted", "lists", "confidence", "evidence"}


@pytest.mark.skipif(shutil.which("camsweep") is None or not SCORER.is_file(), reason="camsweep not installed")
def test_score_corpus_tool_passes() -> None:
    r = subprocess.run([str(SCORER)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
