"""Scoring identification against labelled rows, as ../shared/tools/score-corpus scores them (one copy,
used by the corpus test and the held-out set's test)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from scanner.identify import Identifier


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


@dataclass
class Score:
    r_tot: int = 0
    r_hit: int = 0
    ff: int = 0
    acc_tot: int = 0
    acc_hit: int = 0
    u_tot: int = 0
    u_hit: int = 0
    misses: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"restricted recall {self.r_hit}/{self.r_tot}; false flags {self.ff}; maker accuracy "
                f"{self.acc_hit}/{self.acc_tot}; unknown discipline {self.u_hit}/{self.u_tot}")


def score_rows(rows: list[dict[str, Any]], idf: Identifier | None = None) -> Score:
    idf = idf or Identifier()
    sc = Score()
    for row in rows:
        e = row["expected"]
        got = idf.identify(row["record"])
        rid = row["record"]["id"]
        assert got.id == rid
        if e["identifiable"]:
            sc.acc_tot += 1
            if _same(got.manufacturer, e["manufacturer"]):
                sc.acc_hit += 1
            else:
                sc.misses.append(f"maker {rid}: expected {e['manufacturer']}, got {got.manufacturer}")
            if e["restricted"] is True:
                sc.r_tot += 1
                if got.restricted is True:
                    sc.r_hit += 1
                else:
                    sc.misses.append(f"not flagged {rid}: got {got.manufacturer}")
        else:
            sc.u_tot += 1
            if got.manufacturer is None or _same(got.manufacturer, e["manufacturer"] or ""):
                sc.u_hit += 1
            else:
                sc.misses.append(f"guessed {rid}: got {got.manufacturer}")
        if e["restricted"] is False and got.restricted is True:
            sc.ff += 1
            sc.misses.append(f"FALSE FLAG {rid}: got {got.manufacturer}")
    return sc
