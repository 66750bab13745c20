"""What the lab benchmarks share: their command line (how many devices, which fleet, how many runs, the lab
prefix) and the check that this machine can build a namespace lab at all."""

from __future__ import annotations

import argparse
import sys

from scanner.lab import netns as nsmod


def lab_bench_parser(doc: str | None, *, prefix: str, devices: int = 250, runs: int = 3) -> argparse.ArgumentParser:
    """The options every lab benchmark takes: --devices, --seed (which fleet), --runs (median of) and --prefix
    (the lab's namespaces, so that a bench never meets a test's or the demo's lab)."""
    ap = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=devices)
    ap.add_argument("--seed", type=int, default=0, help="which fleet of that size (default 0, the demo's)")
    ap.add_argument("--runs", type=int, default=runs, help=f"runs of each measurement, median (default {runs})")
    ap.add_argument("--prefix", default=prefix, help=f"lab prefix (default {prefix})")
    return ap


def netns_unavailable(script: str) -> str | None:
    """Why a namespace lab cannot run here (said on stderr), or None."""
    reason = nsmod.netns_unavailable_reason()
    if reason:
        print(f"{script}: the lab cannot run here: {reason}", file=sys.stderr)
    return reason
