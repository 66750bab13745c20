"""The central store's credentials come the libpq way (PGPASSWORD, a password file, a service file) and are
never written to the store, logs or reports; URLs are shown with the password masked."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import psycopg
import pytest

from scanner.errors import StoreError
from scanner.store import Store
from tests.test_push import fill_sensor

pytestmark = pytest.mark.pg


@pytest.fixture
def sensor_db(pg_server):
    """A database owned by role ``sensor``, which must give a password; yields (url without it, password)."""
    pw = "Pw-" + secrets.token_hex(8)
    name = f"cred{os.getpid()}"
    with psycopg.connect(pg_server.url(), autocommit=True) as c:
        c.execute("drop role if exists sensor")
        c.execute(f"create role sensor login password '{pw}'")
        c.execute(f'create database "{name}" owner sensor')
    try:
        yield f"postgresql://sensor@/{name}?host={pg_server.base}", pw, name
    finally:
        pg_server.drop_database(name)
        with psycopg.connect(pg_server.url(), autocommit=True) as c:
            c.execute("drop role if exists sensor")


def _env(**kw):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(kw)
    return env


def _run(args, env, timeout=120):
    return subprocess.run([sys.executable, "-m", "scanner.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def _store_text(url, env) -> str:
    with psycopg.connect(url, **({"password": env["PGPASSWORD"]} if "PGPASSWORD" in env else {})) as c:
        out = []
        for (t,) in c.execute("select tablename from pg_tables where schemaname = 'public'").fetchall():
            out += [repr(r) for r in c.execute(f'select * from "{t}"').fetchall()]
    return "\n".join(out)


def test_without_a_password_the_error_is_clear(sensor_db, monkeypatch):
    url, pw, _ = sensor_db
    for k in [k for k in os.environ if k.startswith("PG")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")
    with pytest.raises(StoreError, match="cannot connect to the store postgresql://sensor@"):
        Store(url)
    with pytest.raises(StoreError) as e:
        Store(url.replace("sensor@", "sensor:wrong-Secret@"))
    assert "wrong-Secret" not in str(e.value) and "sensor:***@" in str(e.value)


@pytest.mark.parametrize("how", ["PGPASSWORD", "pgpass", "service"])
def test_libpq_credentials_work_and_are_never_written(sensor_db, tmp_path, how):
    url, pw, dbname = sensor_db
    env = _env(PGPASSFILE=str(tmp_path / "none"))
    if how == "PGPASSWORD":
        env["PGPASSWORD"] = pw
    elif how == "pgpass":
        f = tmp_path / "pgpass"
        f.write_text(f"*:*:{dbname}:sensor:{pw}\n")
        f.chmod(0o600)
        env["PGPASSFILE"] = str(f)
    else:
        f = tmp_path / "pg_service.conf"
        host = url.split("host=")[1]
        f.write_text(f"[central]\nhost={host}\ndbname={dbname}\nuser=sensor\npassword={pw}\n")
        f.chmod(0o600)
        env["PGSERVICEFILE"] = str(f)
        url = "postgresql://?service=central"
    local = tmp_path / "sensor.db"
    fill_sensor(local, "hq", 5, with_nvr=False)
    log = tmp_path / "push.log"
    p = _run(["push", "--db", str(local), "--to", url, "--log-format", "json", "-v"], env)
    log.write_text(p.stdout + p.stderr)
    assert p.returncode == 0, p.stderr
    report = tmp_path / "org.html"
    r = _run(["report", "--org", "--db", url, "-o", str(report)], env)
    assert r.returncode == 0, r.stderr
    plan = _run(["plan", "export", "--db", url, "--format", "json"], env)
    assert plan.returncode == 0, plan.stderr
    texts = [log.read_text(), report.read_text(), r.stdout + r.stderr, plan.stdout + plan.stderr,
             local.read_bytes().decode("latin-1")]
    stored = _store_text(f"postgresql://sensor:{pw}@/{dbname}?host={url.split('host=')[1]}"
                         if how != "service" else sensor_db[0].replace("sensor@", f"sensor:{pw}@"), {})
    for t in [*texts, stored]:
        assert pw not in t
    assert "hq" in stored  # the scan did arrive
