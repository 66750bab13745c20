#!/usr/bin/env python3
"""Benchmark the central store: ten sensors pushing 1,000 devices each at once into one PostgreSQL, the
same into one SQLite file, the sizes that gives, and the TUI over 10,000 devices on both engines.

1. Ten sensor stores (SQLite), each one site with --devices identified devices (realistic records and
   identifications from tests/tui/synthetic.py, each sensor its own MACs and serials, all in the same
   private range), two daily scans each (the second finds the same devices again).
2. A throwaway PostgreSQL cluster (fsync on: a real server's durability) started here and always
   stopped. Round 1: ten `camsweep push` processes at once (the first scans): wall time, rows. Round 2:
   the same (the second scans): wall time and the bytes it added (= one daily scan of 10 x N devices).
   A third push of all ten: nothing to send. The same two rounds into one SQLite file, for comparison.
3. The TUI (Textual, headless) over each central store: seconds until the restricted devices and the
   plan totals are on screen, and until every device is loaded (median of --tui-runs).

Targets (issue 15): the TUI shows restricted devices and plan totals within 2 s over PostgreSQL with
10,000 devices, as over SQLite. Timings on a shared machine are inflated by other work: read the ratios.

    python bench/central.py [--sensors 10] [--devices 1000] [--tui-runs 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scanner.evidence import EvidenceHit, Identification, parse_record  # noqa: E402
from scanner.store import Store  # noqa: E402
from tests.pgserver import start_cluster  # noqa: E402
from tests.tui.synthetic import PROFILES  # noqa: E402


def fill_sensor(path: Path, k: int, n: int) -> None:
    """One daily scan of sensor ``k``: the same ``n`` devices each time (site-k, its own MACs)."""
    rng = random.Random(1000 + k)
    weighted = [p for p in PROFILES for _ in range(p.weight) if p.key != "hostile"]
    chosen = [rng.choice(weighted) for _ in range(n)]
    with Store(path) as s:
        sid = s.start_scan(["198.18.0.0/22"], options={"rate": 100}, site=f"site-{k:02d}")
        for i, p in enumerate(chosen):
            mac = f"{p.oui}:{k:02x}:{i >> 8:02x}:{i & 255:02x}"
            rec = parse_record({"ip": f"198.18.{i // 250}.{i % 250 + 2}", "mac": mac, **p.record})
            hits = tuple(EvidenceHit(rule=r, field=f, value=v if f != "mac" else mac, strength=st)
                         for r, f, v, st in p.hits)
            ident = Identification(manufacturer=p.manufacturer, brand=p.brand, model=p.model,
                                   firmware=p.firmware, device_type=p.device_type, restricted=p.restricted,
                                   lists=p.lists, confidence=0.95 if p.manufacturer else 0.2, evidence=hits)
            s.record_device(sid, rec, ident, site=f"site-{k:02d}")
        s.finish_scan(sid)


def push_all(sensors: list[Path], target: str) -> tuple[float, list[float]]:
    """All sensors push at once; wall seconds and each push's seconds."""
    t0 = time.perf_counter()
    procs = [(subprocess.Popen([sys.executable, "-m", "scanner.cli", "push", "--db", str(p), "--to", target,
                                "--format", "json", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=ROOT), time.perf_counter()) for p in sensors]
    each = []
    for proc, started in procs:
        out, err = proc.communicate(timeout=1800)
        each.append(time.perf_counter() - started)
        if proc.returncode != 0:
            raise SystemExit(f"push failed: {err[-800:]}")
    return time.perf_counter() - t0, each


def pg_sizes(url: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(url) as c:
        out = {"database": c.execute("select pg_database_size(current_database())").fetchone()[0]}
        for t in ("scans", "devices", "observations", "identifications"):
            out[t] = c.execute("select pg_total_relation_size(%s)", [t]).fetchone()[0]
    return out


def sqlite_size(path: str) -> int:
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


async def tui_times(target: str) -> tuple[float, float, int, int]:
    from tui.app import CamsweepApp

    app = CamsweepApp(target)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(1200):
            if app.loaded and app.first_seconds is not None and app.load_seconds is not None:
                break
            await pilot.pause(0.05)
        assert app.view.totals is not None and app.view.counts.restricted > 0
        return app.first_seconds, app.load_seconds, app.view.counts.devices, app.view.counts.restricted


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sensors", type=int, default=10)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--tui-runs", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="camsweep-bench-central-"))
    res: dict[str, object] = {"sensors": a.sensors, "devices_per_sensor": a.devices}
    t0 = time.perf_counter()
    sensors = []
    for k in range(a.sensors):
        p = tmp / f"sensor-{k:02d}.db"
        fill_sensor(p, k, a.devices)
        sensors.append(p)
    res["fill_seconds"] = round(time.perf_counter() - t0, 1)
    cluster = start_cluster(fsync=True)
    try:
        pg = cluster.create_database("central")
        lite = str(tmp / "central.db")
        Store(lite).close()  # created before the pushes (SQLite creation under a lock is issue 13's item 10)
        for name, target in (("postgresql", pg), ("sqlite", lite)):
            wall, each = push_all(sensors, target)
            with Store(target) as c:
                rows1 = c.counts()
            size1 = pg_sizes(target)["database"] if name == "postgresql" else sqlite_size(lite)
            again, _ = push_all(sensors, target)  # nothing to send
            with Store(target) as c:
                assert c.counts() == rows1, "a second push changed the central store"
            res[name] = {"push_wall_s": round(wall, 2), "push_each_s_median": round(statistics.median(each), 2),
                         "push_each_s_max": round(max(each), 2), "rows": rows1, "bytes": size1,
                         "second_push_s": round(again, 2)}
        # round 2: a second daily scan on every sensor; what one daily scan of all devices adds
        for k, p in enumerate(sensors):
            fill_sensor(p, k, a.devices)
        for name, target in (("postgresql", pg), ("sqlite", lite)):
            before = pg_sizes(target) if name == "postgresql" else {"database": sqlite_size(lite)}
            wall, each = push_all(sensors, target)
            after = pg_sizes(target) if name == "postgresql" else {"database": sqlite_size(lite)}
            with Store(target) as c:
                rows2 = c.counts()
            r = res[name]
            assert isinstance(r, dict)
            r.update({"push2_wall_s": round(wall, 2), "rows_after_second_scan": rows2,
                      "bytes_per_daily_scan": after["database"] - before["database"]})
            if name == "postgresql":
                r["table_bytes"] = after
        t = time.perf_counter()
        import psycopg  # noqa: F401  (`camsweep tui` imports it when it checks the store, before the app)

        res["psycopg_import_s"] = round(time.perf_counter() - t, 2)
        asyncio.run(tui_times(lite))  # warm-up (Textual's imports and CSS), not counted
        runs_of: dict[str, list[tuple[float, float, int, int]]] = {"postgresql": [], "sqlite": []}
        for _ in range(a.tui_runs):  # interleaved, so both engines see the same machine load
            for name, target in (("postgresql", pg), ("sqlite", lite)):
                runs_of[name].append(asyncio.run(tui_times(target)))
        for name in ("postgresql", "sqlite"):
            runs = runs_of[name]
            r = res[name]
            assert isinstance(r, dict)
            r["tui_first_s"] = round(statistics.median(x[0] for x in runs), 2)
            r["tui_all_s"] = round(statistics.median(x[1] for x in runs), 2)
            r["tui_devices"], r["tui_restricted"] = runs[0][2], runs[0][3]
    finally:
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    n = a.sensors * a.devices
    pgr = res["postgresql"]
    assert isinstance(pgr, dict)
    per_scan = pgr["bytes_per_daily_scan"]
    res["sizing"] = {"devices": n, "bytes_first_scan": pgr["bytes"], "bytes_per_daily_scan": per_scan,
                     "year_of_daily_scans_bytes": pgr["bytes"] + 364 * per_scan,
                     "year_rows_identifications": 365 * n, "year_rows_observations": 365 * n}
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        for name in ("postgresql", "sqlite"):
            r = res[name]
            assert isinstance(r, dict)
            print(f"{name:10}  {a.sensors} pushes at once of {a.devices} devices: {r['push_wall_s']} s wall "
                  f"(each: median {r['push_each_s_median']} s, max {r['push_each_s_max']} s); rows {r['rows']}; "
                  f"{r['bytes'] / 1e6:.1f} MB; second push {r['second_push_s']} s, nothing changed; "
                  f"next daily scan: {r['push2_wall_s']} s, +{r['bytes_per_daily_scan'] / 1e6:.1f} MB; "
                  f"TUI over {r['tui_devices']} devices: restricted and plan totals in {r['tui_first_s']} s, "
                  f"all loaded in {r['tui_all_s']} s")
        s = res["sizing"]
        print(f"sizing (PostgreSQL, {n} devices): first scan {s['bytes_first_scan'] / 1e6:.1f} MB, each daily scan "
              f"+{s['bytes_per_daily_scan'] / 1e6:.1f} MB, a year of daily scans "
              f"{s['year_of_daily_scans_bytes'] / 1e9:.2f} GB ({s['year_rows_identifications']:,} identification "
              f"and as many observation rows)")
        ratio = pgr["tui_first_s"] / max(res["sqlite"]["tui_first_s"], 1e-3)  # type: ignore[index]
        print(f"TUI first screen PostgreSQL/SQLite: {ratio:.2f}x (target: both under 2 s; psycopg's import, "
              f"before the app starts, took {res['psycopg_import_s']} s)")
    return 0



if __name__ == "__main__":
    sys.exit(main())
