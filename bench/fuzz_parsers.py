#!/usr/bin/env python3
"""The long run of the parsers' Hypothesis property tests (tests/probes/test_properties.py, plus the
SNMP, DVRIP, nmap XML and vendor API ones beside it): the same properties as CI, with many more examples.

Every parser of device replies and input files gets random and mutated recorded input; each must give
a result or its own error within its time cap, and what it gives must enter the scan as a storable
record. CI runs 40 examples a test; this runs N (default 2000) without derandomising, so each run
explores new input. Prints each test's time and the slowest, and exits non-zero on any failure
(Hypothesis prints the smallest failing input).

Usage: python bench/fuzz_parsers.py [N] [pytest -k expression]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = ["tests/probes/test_properties.py", "tests/probes/test_snmp_dvrip.py", "tests/probes/test_nmap_answers.py",
         "tests/probes/test_vendorapi.py"]


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    expr = sys.argv[2] if len(sys.argv) > 2 else ""
    env = {**os.environ, "CAMSWEEP_FUZZ_EXAMPLES": str(n), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=10",
           "--hypothesis-show-statistics", "--timeout=0", *FILES]
    if expr:
        cmd += ["-k", expr]
    t = time.monotonic()
    rc = subprocess.call(cmd, cwd=ROOT, env=env)
    print(f"\nparser property tests, {n} examples each (test_properties.py; the others keep their own "
          f"counts): {time.monotonic() - t:.0f} s, exit {rc}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
