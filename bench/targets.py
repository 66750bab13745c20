#!/usr/bin/env python3
"""Benchmark target sets (issue 13, item 7): an ``-iL`` list of N single addresses (default 65,536),
parsed and iterated as the engine does, beside ``nmap -n -sL -iL`` listing the same file.

Target: 65,536 targets from ``-iL`` parsed and iterated in under 2 s. Sends nothing: ``nmap -sL -n``
only lists (no DNS, no packet), and camsweep only parses.

Prints, each the median of --runs runs (CPU time of this process for camsweep, wall time for nmap):
- parse: ``parse_targets(input_lists=[file])`` (reading, parsing, the host limit check);
- iterate: one pass over the set; len(); N membership tests (the engine's scope check);
- shuffled: the same with the lines in random order, and with 4,096 exclusions;
- engine: the engine's own passes over the set (the attached interface, the multicast decision, the ARP
  address lists, the routed-target pass), with a route that makes every target attached;
- the ratio against nmap -sL.

    python bench/targets.py [N] [--runs 3]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scanner.targets import parse_targets  # noqa: E402


def addresses(n: int) -> list[str]:
    return [f"198.{18 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}" for i in range(n)]


def run_camsweep(path: str, excl: str | None, n: int) -> dict[str, float]:
    t0 = time.process_time()
    ts = parse_targets([], input_lists=[path], exclude_files=[excl] if excl else [], max_hosts=max(n, 1))
    t1 = time.process_time()
    count = sum(1 for _ in ts)
    t2 = time.process_time()
    size = len(ts)
    inside = 0
    for ip in addresses(n):
        inside += ip in ts
    t3 = time.process_time()
    assert count == size == inside, (count, size, inside)  # membership: every listed address not excluded
    return {"parse": t1 - t0, "iterate": t2 - t1, "parse+iterate": t2 - t0, "membership": t3 - t2, "hosts": count}


def run_engine(path: str, n: int) -> float:
    import ipaddress

    from scanner.engine import Scan, ScanOptions
    from scanner.localnet import Route
    from scanner.store import Store

    ts = parse_targets([], input_lists=[path], max_hosts=max(n, 1))
    routes = [Route("lab0", ipaddress.IPv4Network("198.16.0.0/12"), None)]
    t0 = time.process_time()
    with Store(":memory:") as store:
        scan = Scan(ts, ScanOptions(routes=lambda: routes, discoverers={}, host_probes={}), store, 0, None, set())
        disc = scan.discovery
        chunks = disc.arp_chunks("lab0")
        disc.arp_swept.update(a for c in chunks for a in c)
        rest = sum(1 for _ in disc._routed_targets())
        scan.writer.shutdown()
    took = time.process_time() - t0
    assert sum(len(c) for c in chunks) == n and rest == 0 and disc.multicast_ifaces == []
    return took


def run_nmap(path: str, excl: str | None) -> float | None:
    if not shutil.which("nmap"):
        return None
    cmd = ["nmap", "-n", "-sL", "-iL", path, "-oN", "/dev/null"] + (["--excludefile", excl] if excl else [])
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    return time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=65_536)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        ordered = Path(tmp) / "ordered.txt"
        shuffled = Path(tmp) / "shuffled.txt"
        excl = Path(tmp) / "exclude.txt"
        lines = addresses(args.n)
        ordered.write_text("\n".join(lines) + "\n")
        rng.shuffle(lines)
        shuffled.write_text("\n".join(lines) + "\n")
        excl.write_text("\n".join(lines[: min(4096, args.n // 2)]) + "\n")
        print(f"{args.n} single addresses from -iL; median of {args.runs} runs "
              "(CPU seconds of this process; nmap: wall seconds; the machine may be shared)")
        for label, path, ex in (("ordered", ordered, None), ("shuffled", shuffled, None),
                                ("shuffled, 4,096 excluded", shuffled, excl)):
            runs = [run_camsweep(str(path), str(ex) if ex else None, args.n) for _ in range(args.runs)]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            nm = [run_nmap(str(path), str(ex) if ex else None) for _ in range(args.runs)]
            nmap_s = statistics.median(nm) if all(x is not None for x in nm) else None
            verdict = "OK" if med["parse+iterate"] < 2.0 else "OVER 2 s"
            line = (f"  {label:26s} parse {med['parse']:.3f} s  iterate {med['iterate']:.3f} s  "
                    f"= {med['parse+iterate']:.3f} s [{verdict}]  membership x{args.n} {med['membership']:.3f} s  "
                    f"hosts {int(med['hosts'])}")
            if nmap_s:
                line += f"  | nmap -sL {nmap_s:.3f} s, ratio camsweep/nmap {med['parse+iterate'] / nmap_s:.2f}"
            print(line)
        eng = statistics.median(run_engine(str(shuffled), args.n) for _ in range(args.runs))
        print(f"  engine passes (interface, multicast decision, ARP lists, routed pass): {eng:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
