"""The shared labelled corpus, scored as score-corpus scores it; the misses are printed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from scanner.identify import Identifier
from tests.scoring import score_rows

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "labelled.jsonl"
SCORER = ROOT.parent / "shared" / "tools" / "score-corpus"

pytestmark = pytest.mark.skipif(not CORPUS.is_file(), reason="shared corpus not present")


def test_corpus_figures() -> None:
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines() if line.strip()]
    sc = score_rows(rows)
    print("\n" + sc.line())
    for m in sc.misses:
        print("  miss:", m)
    assert sc.r_tot > 30 and sc.r_hit == sc.r_tot
    assert sc.ff == 0
    assert sc.acc_hit / sc.acc_tot >= 0.95
    assert sc.u_hit == sc.u_tot


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
