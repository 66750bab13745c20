#!/usr/bin/env python3
"""Benchmark a routed network beside a flat one: the same fleet, scanned across a router and on one segment.

Two labs of the same fleet (same --devices, same --seed), one after the other, never both at once:

1. flat: `camsweep lab up` (one bridge; the scanner on the devices' segment: ARP gives every MAC);
2. routed: `camsweep lab up --routed` (two or more camera segments behind a router namespace; dnsmasq
   hands out the addresses, snmpd serves the router's neighbour table). Scanned three ways: with
   `--snmp ROUTER`, with `--dhcp-leases FILE`, and with neither.

Each scan is the full `camsweep scan` with the lab's credentials, --runs times (median), from the lab's
scanner namespace, each run checked against the ground truth (devices missed, false alarms, restricted
found, MACs right). Prints a table and the routed/flat ratios. The machine is shared and the times are
noisy: compare the ratios of one run of this script, not times across runs.

    python bench/routed.py [--devices 250] [--runs 3] [--seed 0] [--prefix cswrb]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import lab_bench_parser, netns_unavailable  # noqa: E402
from scanner.lab import manager  # noqa: E402


def scan_once(st: manager.LabStatus, db: Path, targets: list[str], extra: list[str]) -> tuple[float, dict, int]:
    for ns in (st.scanner_netns, st.router_netns):
        if ns:  # every run starts with cold neighbour caches (the router's too)
            subprocess.run(["ip", "-n", ns, "neigh", "flush", "all"], capture_output=True, timeout=10)
    cmd = ["ip", "netns", "exec", str(st.scanner_netns), sys.executable, "-m", "scanner.cli", "scan", *targets,
           "--db", str(db), "--credentials", st.credentials_file, "--format", "json", "--quiet", *extra]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    took = time.monotonic() - t0
    if p.returncode != 0:
        raise SystemExit(f"scan failed ({p.returncode}): {p.stderr[-1500:]}")
    devices = json.loads(p.stdout)
    ip_to_id = {d["ip"]: d["device_id"] for d in devices if not d.get("parent_ip")}
    rows = [{**d, "parent_id": ip_to_id.get(d.get("parent_ip")) if d.get("parent_ip") else None} for d in devices]
    truth = st.ground_truth_rows()
    cmp = manager.compare_with_ground_truth(rows, truth)
    by_ip = {d["ip"]: d for d in devices if not d.get("parent_ip")}
    macs_right = sum(1 for t in truth if t.get("ip") and not t.get("parent_ip")
                     and (by_ip.get(t["ip"]) or {}).get("mac") == t["mac"])
    return took, cmp, macs_right


def bench(st: manager.LabStatus, name: str, targets: list[str], extra: list[str], runs: int, tmp: Path) -> dict:
    times: list[float] = []
    per_run: list[dict] = []
    for i in range(runs):
        took, cmp, macs = scan_once(st, tmp / f"{name}-{i}.db", targets, extra)
        times.append(took)
        per_run.append({"s": round(took, 2), "hosts": f"{cmp['hosts_found']}/{cmp['hosts']}",
                        "missed": len(cmp["missed"]), "false_alarms": cmp["false_alarms"],
                        "restricted": f"{cmp['restricted_found']}/{cmp['restricted_truth']}",
                        "makers_right": cmp["manufacturer_right"], "macs_right": f"{macs}/{cmp['hosts']}"})
        print(f"  {name} run {i + 1}: {took:.2f} s, hosts {cmp['hosts_found']}/{cmp['hosts']}, missed "
              f"{len(cmp['missed'])} (of {cmp['devices']} with the cameras behind NVRs), false alarms "
              f"{cmp['false_alarms']}, restricted {cmp['restricted_found']}/{cmp['restricted_truth']}, "
              f"MACs right {macs}/{cmp['hosts']}", file=sys.stderr, flush=True)
    return {"median_s": round(statistics.median(times), 2), "runs": per_run}


def main() -> int:
    a = lab_bench_parser(__doc__, prefix="cswrb").parse_args()
    if netns_unavailable("bench/routed.py"):
        return 2
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="camsweep-bench-routed-") as tmpd:
        tmp = Path(tmpd)
        flat_prefix, routed_prefix = f"{a.prefix}f", f"{a.prefix}r"
        try:
            st = manager.up(a.devices, a.seed, prefix=flat_prefix)
            print(f"flat lab: {a.devices} devices on {st.cidr}", file=sys.stderr)
            results["flat (ARP)"] = bench(st, "flat", [st.cidr], [], a.runs, tmp)
        finally:
            manager.down(flat_prefix)
        try:
            st = manager.up(a.devices, a.seed, prefix=routed_prefix, routed=True)
            print(f"routed lab: {a.devices} devices on {', '.join(st.cidrs)} behind {st.snmp['address']} "
                  f"(up in {st.timings.get('up_s')} s, DHCP {st.timings.get('dhcp_s')} s)", file=sys.stderr)
            results["routed --snmp"] = bench(st, "routed-snmp", st.cidrs, ["--snmp", st.snmp["address"]], a.runs, tmp)
            results["routed --dhcp-leases"] = bench(st, "routed-dhcp", st.cidrs, ["--dhcp-leases", st.dhcp_leases],
                                                    a.runs, tmp)
            results["routed (no MAC source)"] = bench(st, "routed-none", st.cidrs, [], a.runs, tmp)
        finally:
            manager.down(routed_prefix)
    flat = results["flat (ARP)"]["median_s"]
    print(f"\n{a.devices} devices, seed {a.seed}, {a.runs} runs each (median time; a shared 2-core machine: noisy,"
          " and a loaded machine costs NVR channel lists to timeouts, flat or routed alike)")
    print(f"{'scan':24} {'median s':>8} {'vs flat':>7}  per run: hosts found, missed (NVR channels incl.), false "
          "alarms, restricted flagged, MACs right")
    for name, r in results.items():
        runs = "; ".join(f"{x['hosts']} {x['missed']} {x['false_alarms']} {x['restricted']} {x['macs_right']}"
                         for x in r["runs"])
        print(f"{name:24} {r['median_s']:8.2f} {r['median_s'] / flat:6.2f}x  {runs}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
