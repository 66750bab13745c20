"""`camsweep identify`'s JSONL writer is json.dumps(ident.to_dict(), ensure_ascii=False), byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scanner.commands.identify import JsonlWriter
from scanner.evidence import EvidenceHit, Identification
from scanner.identify import Identifier

CORPUS = Path("/work/shared/corpus/labelled.jsonl")

ODD = [
    Identification(),
    Identification(id='quote " back \\ nl \n tab \t nul \x00 é 漢', manufacturer="Hikvision", restricted=True,
                   lists=("ndaa889", "é"), confidence=0.97, notes=("a\u2028b",), component_risk=("hisilicon_soc",),
                   evidence=(EvidenceHit("r/1", "f", "v" * 600, "weak", "n"), EvidenceHit("r/2", "f", "v"))),
    Identification(restricted=False, confidence=1),                # an int confidence
    Identification(confidence=float("nan")), Identification(confidence=1e308 * 10),
    Identification(model=5), Identification(lists=["a"]), Identification(notes=({"x": 1},)),  # not the usual types
    Identification(confidence=0.1 + 0.2, serial="S1"),
    Identification(evidence=(EvidenceHit("r/3", "mac", 'q"\\\x01 漢', "strong", ""),          # hits written directly:
                             EvidenceHit("r/4", "f", "v", "weak", 7),                      # a note not a string
                             EvidenceHit("r/5", None, "v", "weak", "n"))),                 # a field not a string
    Identification(review={"maker": 'Q"\\ 漢', "reason": "r\n"}), Identification(review={}),     # reviews
    Identification(review={"maker": "x", 1: 2.5}),
]


@pytest.mark.parametrize("ident", ODD)
def test_odd_identifications(ident) -> None:
    w = JsonlWriter()
    want = json.dumps(ident.to_dict(), ensure_ascii=False)
    assert w.line(ident) == want
    assert w.line(ident) == want  # again, from the caches


@pytest.mark.skipif(not CORPUS.is_file(), reason="the shared corpus is not on this machine")
def test_corpus_results() -> None:
    idf, w = Identifier(), JsonlWriter()
    for line in CORPUS.read_text().splitlines():
        ident = idf.identify(json.loads(line)["record"])
        assert w.line(ident) == json.dumps(ident.to_dict(), ensure_ascii=False)
