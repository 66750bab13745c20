#!/usr/bin/env python3
"""Benchmark `camsweep identify` end to end: read JSONL, identify, write JSONL (target: >= 20,000
records per CPU second, one core, with every fingerprint source loaded; one record in under 0.5 s).

Records are generated from the shapes of ../shared/corpus/labelled.jsonl with randomised MACs,
serials, models and versions (seeded), plus plain hosts, so every rule family is exercised: a
fleet-like mix where most banners repeat and MACs, serials and some versions do not.

Prints:
- end to end: the CLI's own path (``scanner.commands.identify.run`` reading a JSONL file and writing
  JSONL to a file), records per CPU second and per wall second;
- the parts: JSON parse + record build, identify, result serialisation, each per CPU second;
- first record: a fresh ``camsweep identify -`` process given one record (start-up included), and in
  this process the time from building the identifier to the first answer.
Usage: python bench/identify.py [N] (default 100000)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CORPUS = ROOT.parent / "shared" / "corpus" / "labelled.jsonl"
if not CORPUS.is_file():
    CORPUS = Path("/work/shared/corpus/labelled.jsonl")
HOSTS = [
    {"http": [{"port": 80, "status": 200, "headers": {"Server": "Apache/2.4.57 (Debian)"}, "title": "It works"}],
     "banners": [{"protocol": "ssh", "text": "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u2"}]},
    {"http": [{"port": 631, "status": 200, "headers": {"Server": "HP HTTP Server; HP Color LaserJet MFP M477fdw"}}],
     "mdns": [{"type": "_ipp._tcp.local.", "name": "HP Color LaserJet"}]},
    {"http": [{"port": 5000, "status": 200, "title": "Synology DiskStation - nas01"}]},
    {"discovery": [{"protocol": "snmp", "fields": {"sysDescr": "Cisco IOS Software, C2960 Software (C2960-LANBASEK9-M), "
                                                                "Version 12.2(55)SE5, RELEASE SOFTWARE (fc1)",
                                                   "sysObjectID": "1.3.6.1.4.1.9.1.1208"}}]},
]
FIRST = {"id": "first", "mac": "28:57:be:01:02:03", "http": [{"port": 80, "headers": {"Server": "App-webs/"}}],
         "banners": [{"protocol": "snmp", "text": "Linux 3.10 armv7l"}]}


def _templates() -> list[dict]:
    out = list(HOSTS)
    if CORPUS.is_file():
        for line in CORPUS.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)["record"]
                rec.pop("id", None)
                out.append(rec)
    return out


def _mutate(obj, rnd: random.Random):
    if isinstance(obj, dict):
        return {k: _mutate(v, rnd) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_mutate(v, rnd) for v in obj]
    if isinstance(obj, str) and rnd.random() < 0.3:
        return obj.replace("0", str(rnd.randrange(10)), 1)
    return obj


def generate(n: int, seed: int = 1) -> list[str]:
    rnd = random.Random(seed)
    tpl = _templates()
    lines = []
    for i in range(n):
        rec = _mutate(rnd.choice(tpl), rnd)
        rec["id"] = f"bench-{i}"
        if "mac" in rec or rnd.random() < 0.5:
            base = rec.get("mac", "28:57:be:00:00:00")[:9]
            rec["mac"] = base + ":".join(f"{rnd.randrange(256):02x}" for _ in range(3))
        rec.setdefault("ip", f"198.18.{(i >> 8) & 255}.{i & 255}")
        lines.append(json.dumps(rec))
    return lines


def _first_record_process() -> float:
    """Wall seconds for a fresh `camsweep identify -` process to answer one record."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "scanner.cli", "identify", "-"], input=json.dumps(FIRST) + "\n",
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    dt = time.perf_counter() - t0
    if out.returncode != 0 or '"first"' not in out.stdout:
        raise SystemExit(f"identify failed: {out.stderr[-500:]}")
    return dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=100_000)
    n = ap.parse_args().n
    lines = generate(n)

    # first record, in this process: identifier built from scratch, one record answered
    from scanner.evidence import parse_line

    t0 = time.perf_counter()
    from scanner.identify import Identifier

    first_idf = Identifier()
    first = first_idf.identify(parse_line(json.dumps(FIRST)))
    first_in_process = time.perf_counter() - t0
    first_process = min(_first_record_process() for _ in range(3))

    # end to end: the CLI's own path, file in, file out
    from scanner.commands import identify as cmd

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "in.jsonl"), Path(tmp, "out.jsonl")
        src.write_text("\n".join(lines) + "\n")
        args = argparse.Namespace(path=str(src), format="jsonl", policy=None, input_format="jsonl")
        with open(dst, "w", encoding="utf-8") as out, contextlib.redirect_stdout(out):
            w0, c0 = time.perf_counter(), time.process_time()
            rc = cmd.run(args)
            c1, w1 = time.process_time(), time.perf_counter()
        answered = sum(1 for _ in open(dst, encoding="utf-8"))
        restricted = sum(1 for line in open(dst, encoding="utf-8") if '"restricted": true' in line)
    if rc != 0 or answered != n:
        raise SystemExit(f"identify answered {answered} of {n} records (exit {rc})")
    e2e_cpu, e2e_wall = n / (c1 - c0), n / (w1 - w0)

    # the parts, each on its own (a fresh identifier: its caches start empty, as the CLI's do)
    c0 = time.process_time()
    records = [parse_line(line) for line in lines]
    c1 = time.process_time()
    idf = Identifier()
    results = [idf.identify(r) for r in records]
    c2 = time.process_time()
    for r in results:
        json.dumps(r.to_dict(), ensure_ascii=False)
    c3 = time.process_time()

    print(f"records: {n}  restricted: {restricted}  (one process, one thread)")
    print(f"end to end (read JSONL, identify, write JSONL): {e2e_cpu:10,.0f} records per CPU second "
          f"({e2e_wall:,.0f} per wall second)")
    print(f"  parse {n / (c1 - c0):,.0f}/CPU s, identify {n / (c2 - c1):,.0f}/CPU s, "
          f"serialise {n / (c3 - c2):,.0f}/CPU s")
    print(f"first record: {first_process * 1000:.0f} ms in a fresh `camsweep identify -` process; "
          f"{first_in_process * 1000:.0f} ms from building the identifier to the first answer "
          f"(maker {first.manufacturer})")
    db = idf.db
    print(f"fingerprints: {db.version}")
    ok = e2e_cpu >= 20_000 and first_in_process < 0.5
    print(f"target >= 20,000 records per CPU second end to end and first record < 0.5 s: "
          f"{'met' if ok else 'NOT met'}; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
