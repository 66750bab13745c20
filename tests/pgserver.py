"""A throwaway PostgreSQL cluster for the tests and benchmarks: initdb in a temporary directory, run as
an unprivileged user (``nobody`` when we are root, as in CI; PostgreSQL refuses to run as root), listening
only on a Unix socket in that directory (no TCP port at all), stopped and removed whatever happens.

Fixtures (imported by tests/conftest.py):

``pg_server``   session: the running cluster (:class:`PgCluster`); skips when PostgreSQL is not installed.
``pg_url``      a fresh, empty database of that cluster for one test: a ``postgresql://`` URL.
``store_url``   parametrised over both engines: a SQLite path, then a PostgreSQL URL (marked ``pg``).

Clusters left behind by a test session that was killed (its pid is gone) are stopped first.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

PREFIX = "camsweep-pg-"
_counter = itertools.count(1)


def pg_bin_dir() -> Path | None:
    """Where initdb, pg_ctl and postgres are: on PATH, else Debian's /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for d in candidates:
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file() and (d / "postgres").is_file():
            return d
    return None


_WATCHDOG = """
import os, shutil, subprocess, sys, time
owner, pg_ctl, data, base, prefix = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
while True:
    try:
        os.kill(owner, 0)
    except ProcessLookupError:
        break
    except PermissionError:
        pass
    time.sleep(1)
if os.path.exists(os.path.join(data, "postmaster.pid")):
    subprocess.run([*prefix, pg_ctl, "-D", data, "-m", "immediate", "-w", "-t", "30", "stop"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
shutil.rmtree(base, ignore_errors=True)
"""


class PgCluster:
    def __init__(self, base: Path, bindir: Path, user_prefix: list[str]) -> None:
        self.base, self.bindir, self.user_prefix = base, bindir, user_prefix
        self.data = base / "data"
        self.watchdog: subprocess.Popen[bytes] | None = None

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://camsweep@/{dbname}?host={self.base}"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.user_prefix, str(self.bindir / args[0]), *args[1:]], capture_output=True,
                              text=True, timeout=timeout, cwd=str(self.base))

    def start(self, *, fsync: bool = False) -> None:
        p = self._run("initdb", "-D", str(self.data), "-U", "camsweep", "--auth=trust", "-E", "UTF8",
                      "--locale=C", "--no-sync")
        if p.returncode:
            raise RuntimeError(f"initdb failed: {p.stderr.strip()[-800:]}")
        # the role "sensor" must give a password (the credential tests); everyone else is trusted
        hba = self.data / "pg_hba.conf"
        hba.write_text("local all sensor scram-sha-256\n" + hba.read_text())
        opts = (f"-k {self.base} -c listen_addresses='' -c max_connections=200 -c shared_buffers=64MB "
                + ("" if fsync else "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"))
        p = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.base / "log"), "-o", opts, "-w",
                      "-t", "60", "start")
        if p.returncode:
            log = (self.base / "log").read_text(errors="replace")[-800:] if (self.base / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {p.stderr.strip()[-400:]} {log}")
        # stops the cluster if this process dies without its finalisers (SIGKILL): whatever happens
        self.watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(self.bindir / "pg_ctl"), str(self.data),
             str(self.base), *self.user_prefix], start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.watchdog is not None and self.watchdog.poll() is None:
            self.watchdog.kill()  # the watchdog we started, by its pid
            self.watchdog.wait(timeout=10)
        if (self.data / "postmaster.pid").exists():
            p = self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop", timeout=60)
            if p.returncode and (self.data / "postmaster.pid").exists():
                _kill_postmaster(self.data)
        shutil.rmtree(self.base, ignore_errors=True)

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as c:
            c.execute(f'create database "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as c:
            c.execute(f'drop database if exists "{name}" with (force)')


def _kill_postmaster(data: Path) -> None:
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError, IndexError):
        pass


def reap_stale_clusters() -> None:
    """Stop clusters of sessions that died (directory camsweep-pg-<pid>-..., that pid gone)."""
    from scanner.store import pid_alive

    for d in glob.glob(os.path.join(tempfile.gettempdir(), PREFIX + "*")):
        try:
            owner = int(Path(d).name[len(PREFIX):].split("-")[0])
        except ValueError:
            continue
        if owner != os.getpid() and not pid_alive(owner):
            data = Path(d) / "data"
            if (data / "postmaster.pid").exists():
                _kill_postmaster(data)
            shutil.rmtree(d, ignore_errors=True)


def start_cluster(*, fsync: bool = False) -> PgCluster:
    """A running throwaway cluster (raises RuntimeError when PostgreSQL is missing or will not start)."""
    bindir = pg_bin_dir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (initdb not found; Debian: apt-get install postgresql)")
    import stat

    if not stat.S_ISCHR(os.stat("/dev/null").st_mode):  # initdb's shell redirects to it, as nobody
        raise RuntimeError("/dev/null is not a character device on this machine (something replaced it); "
                           "initdb cannot run")
    reap_stale_clusters()
    base = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL will not run as root: as nobody, owning only this directory
        import pwd

        nobody = pwd.getpwnam("nobody")
        os.chown(base, nobody.pw_uid, nobody.pw_gid)
        base.chmod(0o700)
        runuser = shutil.which("runuser") or shutil.which("setpriv")
        if runuser is None:
            raise RuntimeError("running as root without runuser or setpriv to drop to nobody")
        prefix = [runuser, "-u", "nobody", "--"] if runuser.endswith("runuser") else \
            [runuser, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
    cluster = PgCluster(base, bindir, prefix)
    try:
        cluster.start(fsync=fsync)
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgCluster]:
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # a CI timeout's SIGTERM unwinds to the finaliser
        def on_term(signum: int, frame: object) -> None:
            raise KeyboardInterrupt("SIGTERM")
        signal.signal(signal.SIGTERM, on_term)
    try:
        cluster = start_cluster()
    except RuntimeError as exc:
        if os.environ.get("CAMSWEEP_REQUIRE_PG"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_server: PgCluster) -> Iterator[str]:
    name = f"t{os.getpid()}_{next(_counter)}"
    url = pg_server.create_database(name)
    try:
        yield url
    finally:
        pg_server.drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "s.db")
    return str(request.getfixturevalue("pg_url"))
