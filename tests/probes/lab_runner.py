"""Run inside a lab's scanner namespace: every probe against the lab, printed as one JSON summary.

Used by test_lab_probes.py (``ip netns exec <scan ns> python -m tests.probes.lab_runner STATE_DIR``).
"""

from __future__ import annotations

import asyncio
import configparser
import importlib
import json
import sys
import time

from scanner.probes import arp, passive
from scanner.probes.base import ProbeContext
from scanner.probes.registry import DISCOVERY_PROBES, HOST_PROBES


async def main(state: str, network: str) -> dict:
    gt = [json.loads(line) for line in open(f"{state}/ground-truth.jsonl")]
    ips = sorted({g["ip"] for g in gt if g.get("ip")})
    allowed = set(ips[:-1])  # the last device is left out of the targets: its replies must be dropped
    cp = configparser.ConfigParser()
    cp.read(f"{state}/credentials.ini")

    def creds(host: str):
        return (cp[host]["username"], cp[host]["password"]) if cp.has_section(host) else None

    ctx = ProbeContext(timeout=3.0, interface="eth0", allow=lambda ip: ip in allowed, discover_wait=1.5)
    summary: dict = {"targets": sorted(allowed), "excluded": ips[-1], "segment": {}, "timings": {}}
    for name in (n for n in DISCOVERY_PROBES if n != "arp"):  # ARP: arp.sweep below
        t = time.monotonic()
        found = await importlib.import_module(f"scanner.probes.{name}").discover(ctx)
        summary["segment"][name] = sorted(f["ip"] for f in found)
        summary["timings"][name] = round(time.monotonic() - t, 2)
    t = time.monotonic()
    summary["segment"]["arp"] = sorted(f["ip"] for f in await arp.sweep(network, ctx))
    summary["timings"]["arp"] = round(time.monotonic() - t, 2)

    async def wsd_later():
        await asyncio.sleep(0.5)
        return await importlib.import_module("scanner.probes.wsd").discover(ctx)

    task = asyncio.create_task(wsd_later())
    captured = await passive.capture(ctx, 3.0)
    await task
    summary["passive_wsd"] = sorted(r["ip"] for r in captured if r.get("wsd"))

    ctx_creds = ProbeContext(timeout=3.0, interface="eth0", allow=ctx.allow, credentials=creds)
    t = time.monotonic()

    async def host(ip: str, c: ProbeContext) -> dict:
        frag: dict = {}
        for r in await asyncio.gather(*(importlib.import_module(f"scanner.probes.{n}").probe(ip, c)
                                        for n in HOST_PROBES)):
            for k, v in r.items():
                frag.setdefault(k, [] if isinstance(v, list) else v)
                if isinstance(v, list):
                    frag[k].extend(v)
        return frag

    sem = asyncio.Semaphore(4)  # hosts in flight, as the engine bounds them

    async def bounded(ip: str, c: ProbeContext) -> dict:
        async with sem:
            return await host(ip, c)

    plain = await asyncio.gather(*(bounded(ip, ctx) for ip in ips))
    summary["timings"]["per_host_all"] = round(time.monotonic() - t, 2)
    with_creds = await asyncio.gather(*(bounded(ip, ctx_creds) for ip in ips))
    summary["hosts"] = {ip: {"plain": p, "creds": c} for ip, p, c in zip(ips, plain, with_creds, strict=True)}
    summary["ground_truth"] = gt
    return summary


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
