#!/usr/bin/env python3
"""Benchmark `camsweep scan` beside its peers, in one lab, and print the ratios.

Everything runs inside the lab's scanner namespace, against the lab's simulated fleet only:

1. discovery of the lab's /24: `camsweep scan -sn --no-multicast` (ARP, like arp-scan), `camsweep scan -sn`
   (ARP and multicast discovery), `arp-scan` (defaults) and `nmap -n -sn`; the neighbour cache is flushed
   before each run; median of --runs runs, hosts found each time;
2. the full scan: `camsweep scan` with the lab's credentials, min(--runs, 3) times (median), each run checked
   against the ground truth, beside
   `nmap -n -sV -p 80,443,554,8000,37777` (minutes: bounded by --sv-timeout, --skip-nmap-sv to leave out);
3. memory of a /16 sweep: the scanner's interface gets a /16 address for the run (inside the lab
   namespace), `camsweep scan 198.18.0.0/16` runs, its peak RSS is read from wait4(); --skip-slash16 to leave out.

Targets: discovery no slower than arp-scan; a full scan of 250 devices under 15 s and faster than nmap -sV;
under 300 MB for the /16 sweep. Needs root and network namespaces; the lab is always taken down.

    python bench/scan.py [--devices 250] [--runs 3] [--prefix cswb] [--skip-nmap-sv] [--skip-slash16]
"""

from __future__ import annotations

import json
import os
import shutil
import signal
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

NMAP_SV_PORTS = "80,443,554,8000,37777"


def group_rss_kb(pgid: int) -> int:
    """Resident memory of every process in a process group (the command and its workers), in KB."""
    total = 0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) != pgid:  # field 5 of stat: the process group
                continue
            for line in (d / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total


LAST_GROUP_PEAK_KB = 0
LAST_CPU_S = 0.0  # user + system CPU seconds of the last command (and the children it waited for), from wait4


def run_timed(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> tuple[float, int, str, str, int]:
    """(seconds, exit code, stdout, stderr, peak RSS in KB of the command, from wait4). The peak of the whole
    process group (the command and its worker processes), sampled every 0.2 s, goes to LAST_GROUP_PEAK_KB."""
    global LAST_GROUP_PEAK_KB, LAST_CPU_S
    t0 = time.monotonic()
    LAST_GROUP_PEAK_KB = 0
    LAST_CPU_S = 0.0
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, start_new_session=True)
        deadline = t0 + timeout
        status, usage = None, None
        next_sample = 0.0
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() >= next_sample:
                LAST_GROUP_PEAK_KB = max(LAST_GROUP_PEAK_KB, group_rss_kb(p.pid))
                next_sample = time.monotonic() + 0.2
            if time.monotonic() > deadline:
                os.killpg(p.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(p.pid, 0)
                status = -1
                break
            time.sleep(0.01)
        took = time.monotonic() - t0
        if usage is not None:
            LAST_CPU_S = usage.ru_utime + usage.ru_stime
        p.returncode = os.waitstatus_to_exitcode(status) if status != -1 else -9
        out.seek(0)
        err.seek(0)
        return took, p.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"), \
            int(usage.ru_maxrss if usage else 0)


def in_ns(ns: str, *cmd: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *cmd]


def flush(ns: str) -> None:
    subprocess.run(["ip", "-n", ns, "neigh", "flush", "all"], capture_output=True, timeout=10)


def camsweep(ns: str, *args: str) -> list[str]:
    return in_ns(ns, sys.executable, "-m", "scanner.cli", "scan", *args)


def count_arp_scan(out: str) -> int:
    return sum(1 for line in out.splitlines() if line[:1].isdigit() and "\t" in line)


def count_nmap_up(out: str) -> int:
    return sum(1 for line in out.splitlines() if line.startswith("Host: ") and "Status: Up" in line)


def bench_discovery(st: manager.LabStatus, runs: int, db_dir: Path) -> dict[str, dict]:
    ns, cidr, iface = str(st.scanner_netns), st.cidr, st.interface or "eth0"
    tools: dict[str, list[str]] = {}
    tools["camsweep -sn (ARP)"] = camsweep(ns, cidr, "-sn", "--no-multicast", "-q", "--format", "json",
                                           "--db", str(db_dir / "disc.db"))
    tools["camsweep -sn (ARP+multicast)"] = camsweep(ns, cidr, "-sn", "-q", "--format", "json",
                                                     "--db", str(db_dir / "disc.db"))
    if shutil.which("arp-scan"):
        tools["arp-scan"] = in_ns(ns, "arp-scan", "-I", iface, "-q", "-x", cidr)
    if shutil.which("nmap"):
        tools["nmap -sn"] = in_ns(ns, "nmap", "-n", "-sn", "-e", iface, "-oG", "-", cidr)
    res: dict[str, dict] = {}
    for name, cmd in tools.items():
        times, found = [], []
        for _ in range(runs):
            flush(ns)
            took, code, out, err, _rss = run_timed(cmd, 120)
            if code != 0:
                print(f"  {name}: exit {code}: {err.strip()[-300:]}", file=sys.stderr)
                continue
            times.append(took)
            if name.startswith("camsweep"):
                found.append(len(json.loads(out)))
            elif name == "arp-scan":
                found.append(count_arp_scan(out))
            else:
                found.append(count_nmap_up(out))
        if times:
            res[name] = {"median_s": statistics.median(times), "min_s": min(times), "found": found}
    return res


def bench_full(st: manager.LabStatus, db_dir: Path, skip_sv: bool, sv_timeout: float,
               runs: int = 3) -> dict[str, dict]:
    """The full scan ``runs`` times (median time; every run checked against the ground truth), then nmap -sV."""
    ns, cidr = str(st.scanner_netns), st.cidr
    res: dict[str, dict] = {}
    times: list[float] = []
    cpus: list[float] = []
    entry: dict = {"truths": [], "peak_rss_mb": 0.0, "peak_group_rss_mb": 0.0, "exit": 0}
    for i in range(max(1, runs)):
        flush(ns)
        db = db_dir / f"full{i}.db"
        took, code, out, err, rss = run_timed(camsweep(ns, cidr, "--credentials", st.credentials_file, "-q",
                                                       "--format", "json", "--db", str(db)), 300)
        entry["peak_rss_mb"] = max(entry["peak_rss_mb"], rss / 1024)
        entry["peak_group_rss_mb"] = max(entry["peak_group_rss_mb"], LAST_GROUP_PEAK_KB / 1024)
        if code != 0:
            entry.update(exit=code, error=err.strip()[-500:])
            break
        times.append(took)
        cpus.append(LAST_CPU_S)
        devices = json.loads(out)
        ip_to_id = {d["ip"]: d["device_id"] for d in devices if not d.get("parent_ip")}
        rows = [{**d, "parent_id": ip_to_id.get(d.get("parent_ip")) if d.get("parent_ip") else None}
                for d in devices]
        cmp = manager.compare_with_ground_truth(rows, st.ground_truth_rows())
        cmp["missed"] = len(cmp["missed"])
        entry["truths"].append(cmp)
    if times:
        entry.update(seconds=statistics.median(times), min_s=min(times), max_s=max(times), runs=len(times),
                     cpu_s=statistics.median(cpus), cpu_min_s=min(cpus), cpu_max_s=max(cpus))
        worst = min(entry["truths"], key=lambda t: (t["found"], t["restricted_found"], -t["manufacturer_wrong"],
                                                    -t["false_alarms"]))
        entry["truth"] = worst  # the worst run's comparison
    else:
        entry["seconds"] = None
    res["camsweep scan"] = entry
    if not skip_sv and shutil.which("nmap"):
        flush(ns)
        took, code, out, err, _ = run_timed(in_ns(ns, "nmap", "-n", "-sV", "-p", NMAP_SV_PORTS, "-oG", "-", cidr),
                                            sv_timeout)
        up = count_nmap_up(out) if code == 0 else None
        res["nmap -sV"] = {"seconds": took, "exit": code, "hosts_up": up, "timed_out": code == -9}
    return res


def bench_slash16(st: manager.LabStatus, db_dir: Path, timeout: float, *extra_args: str) -> dict:
    """A /16 sweep: the scanner's interface (inside the lab namespace) gets a /16 address for the run.
    ``extra_args`` (e.g. ``-sn``) are passed to the scan."""
    ns, iface = str(st.scanner_netns), st.interface or "eth0"
    extra = "198.18.255.254/16"
    subprocess.run(["ip", "-n", ns, "addr", "add", extra, "dev", iface], check=True, capture_output=True, timeout=10)
    try:
        flush(ns)
        took, code, out, err, rss = run_timed(
            camsweep(ns, "198.18.0.0/16", "--exclude", "198.18.255.254", "--credentials", st.credentials_file,
                     "-q", "--format", "json", "--db", str(db_dir / f"slash16{len(extra_args)}.db"),
                     *extra_args), timeout)
        found = len(json.loads(out)) if code == 0 else None
        return {"seconds": took, "exit": code, "peak_rss_mb": rss / 1024,
                "peak_group_rss_mb": LAST_GROUP_PEAK_KB / 1024, "devices": found,
                "error": err.strip()[-300:] if code else ""}
    finally:
        subprocess.run(["ip", "-n", ns, "addr", "del", extra, "dev", iface], capture_output=True, timeout=10)


def main() -> int:
    ap = lab_bench_parser(__doc__, prefix="cswb")
    ap.add_argument("--skip-nmap-sv", action="store_true")
    ap.add_argument("--sv-timeout", type=float, default=900.0)
    ap.add_argument("--skip-slash16", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = ap.parse_args()
    if netns_unavailable("bench/scan.py"):
        return 2

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    results: dict = {"devices": args.devices}
    t0 = time.monotonic()
    st = manager.up(args.devices, args.seed, prefix=args.prefix)
    try:
        results["lab_up_s"] = round(time.monotonic() - t0, 2)
        print(f"lab {args.prefix}: {st.devices} devices on {st.cidr}, up in {results['lab_up_s']} s", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="camsweep-bench-") as tmp:
            db_dir = Path(tmp)
            print("discovery ...", file=sys.stderr)
            results["discovery"] = bench_discovery(st, args.runs, db_dir)
            print("full scan ...", file=sys.stderr)
            results["full"] = bench_full(st, db_dir, args.skip_nmap_sv, args.sv_timeout, min(args.runs, 3))
            if not args.skip_slash16:
                print("/16 sweep ...", file=sys.stderr)
                results["slash16_sn"] = bench_slash16(st, db_dir, 600, "-sn")
                results["slash16"] = bench_slash16(st, db_dir, 600)
    finally:
        manager.down(args.prefix)
    report(results)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "n/a"


def report(r: dict) -> None:
    n_net = None
    print(f"\ncamsweep scan bench, {r['devices']} lab devices (load average {os.getloadavg()[0]:.1f})")
    print("\ndiscovery of the lab /24 (median s, hosts found per run)")
    d = r.get("discovery", {})
    for name, e in d.items():
        print(f"  {name:30} {e['median_s']:7.2f} s  found {e['found']}")
    cs = d.get("camsweep -sn (ARP)", {}).get("median_s")
    print(f"  ratio camsweep(ARP)/arp-scan   {_ratio(cs, d.get('arp-scan', {}).get('median_s'))}"
          f"   camsweep(ARP)/nmap -sn {_ratio(cs, d.get('nmap -sn', {}).get('median_s'))}")
    f = r.get("full", {})
    c = f.get("camsweep scan", {})
    print("\nfull scan")
    if c and c.get("seconds"):
        t = c.get("truth", {})
        n_net = t.get("devices")
        print(f"  camsweep scan (median of {c['runs']}) {c['seconds']:7.2f} s  ({c['min_s']:.2f}-{c['max_s']:.2f} s)  "
              f"peak {c['peak_rss_mb']:.0f} MB (with workers {c.get('peak_group_rss_mb', 0):.0f} MB)")
        print(f"  CPU of the scan (user + system, workers included): median {c.get('cpu_s', 0):.2f} s "
              f"({c.get('cpu_min_s', 0):.2f}-{c.get('cpu_max_s', 0):.2f} s); load average {os.getloadavg()[0]:.1f}")
        print(f"  ground truth, worst run: {json.dumps(t)}")
    elif c:
        print(f"  camsweep scan failed: exit {c['exit']}: {c.get('error', '')}")
    nm = f.get("nmap -sV")
    if nm:
        more = " (timed out: a lower bound)" if nm["timed_out"] else ""
        print(f"  nmap -sV -p {NMAP_SV_PORTS}  {nm['seconds']:7.2f} s  hosts up {nm['hosts_up']}{more}")
        print(f"  ratio camsweep/nmap -sV        {_ratio(c.get('seconds'), nm['seconds'])}")
    for key, label in (("slash16_sn", "/16 sweep, discovery (-sn)"), ("slash16", "/16 sweep, full scan")):
        s16 = r.get(key)
        if s16:
            print(f"\n{label}: {s16['seconds']:.1f} s, peak RSS {s16['peak_rss_mb']:.0f} MB (with workers "
                  f"{s16.get('peak_group_rss_mb', 0):.0f} MB), devices {s16['devices']}"
                  + (f", exit {s16['exit']}: {s16['error']}" if s16["exit"] else ""))
    print("\ntargets: discovery <= arp-scan; full scan < 15 s and < nmap -sV; /16 sweep < 300 MB"
          + (f" ({n_net} ground-truth devices)" if n_net else ""))


if __name__ == "__main__":
    sys.exit(main())
