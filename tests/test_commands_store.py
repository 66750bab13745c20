"""Every command opens the store one way (scanner/commands/options.py): the same answer, for every command,
to a missing file, a directory, an unreadable file, a file that is not SQLite, an SQLite database that is
not a camsweep store, an unreachable postgresql:// URL and no --db at all. The commands that read (report,
plan, diff, export, push's local store) refuse a missing file; those that write scans (scan, demo, the TUI,
which starts scans from inside, push --to) create it."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import pytest

from scanner.cli import main
from scanner.errors import LabError

READERS = {
    "report": ["report", "--list"],
    "plan show": ["plan", "show"],
    "plan export": ["plan", "export", "-o", "-"],
    "plan set": ["plan", "set", "1", "--status", "ordered"],
    "diff": ["diff", "--site", "hq"],
    "export": ["export", "--format", "macs"],
    "push": ["push", "--to", "{tmp}/central.db"],
}
# a scan of the loopback address alone, from discovery (TCP liveness) only: quick, and nothing leaves the host
SCAN = ["scan", "127.0.0.1", "--discovery-only", "--no-arp", "--no-multicast", "--no-icmp", "--quiet",
        "--timeout", "1", "--host-timeout", "2"]
WRITERS = {"scan": SCAN, "tui": ["tui"], "demo": ["demo", "--no-tui", "--loopback"], "push --to": ["push", "--db", "{tmp}/local.db"]}
MISSING = "no camsweep store at"


@pytest.fixture(autouse=True)
def _no_tui_no_lab(monkeypatch, tmp_path):
    """The TUI is not started (tui.app.run records its arguments) and the demo builds no lab (its bring_up
    records that it was reached, then fails): what is tested is how each opens its store. No $CAMSWEEP_DB,
    and the user data directory is under tmp_path."""
    import scanner.commands.demo as demo
    import tui.app

    monkeypatch.setattr(tui.app, "run", lambda *a, **k: reached.append("tui"))
    monkeypatch.setattr(demo, "bring_up", lambda *a, **k: (reached.append("lab"), _raise())[1])
    monkeypatch.setattr(demo, "_hangup_as_interrupt", lambda: None)  # no signal handlers left in pytest
    monkeypatch.delenv("CAMSWEEP_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    reached.clear()


reached: list[str] = []


def _raise() -> None:
    raise LabError("no lab in this test")


def _argv(words: list[str], tmp: Path, db: str | None, *, to: bool = False) -> list[str]:
    argv = [w.replace("{tmp}", str(tmp)) for w in words]
    if db is None:
        return argv
    return argv + (["--to", db] if to else ["--db", db])


def _local_store(tmp: Path) -> None:
    from scanner.store import Store

    Store(tmp / "local.db").close()


def _make(case: str, tmp: Path) -> str:
    p = tmp / "s.db"
    if case == "directory":
        p.mkdir()
    elif case == "not-sqlite":
        p.write_text("hello, not a database\n" * 50)
    elif case == "foreign-sqlite":
        conn = sqlite3.connect(p)
        conn.execute("create table inventory (serial text)")
        conn.commit()
        conn.close()
    return str(p)


def _tables(p: str) -> set[str]:
    conn = sqlite3.connect(p)
    try:
        return {r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")}
    finally:
        conn.close()


ALL = [*[(n, a, False) for n, a in READERS.items()], *[(n, a, True) for n, a in WRITERS.items()]]


@pytest.mark.parametrize("name,words,writes", ALL, ids=[x[0] for x in ALL])
def test_missing_file_refused_by_readers_created_by_writers(name, words, writes, tmp_path, capsys):
    db = str(tmp_path / "none" / "s.db")
    to = name == "push --to"
    if to:
        _local_store(tmp_path)
    rc = main(_argv(words, tmp_path, db, to=to))
    err = capsys.readouterr().err
    if not writes:
        assert rc == 2 and f"camsweep: error: {MISSING} {db}" in err, err
        assert not Path(db).exists() and not Path(db).parent.exists()
        assert reached == []
    elif name == "demo":  # the scan the demo runs makes the store; the demo gets as far as building the lab
        assert reached == ["lab"] and rc == 2
    else:
        assert rc == 0, err
        assert "scans" in _tables(db)


@pytest.mark.parametrize("case,message", [
    ("directory", "is a directory, not a camsweep store"),
    ("not-sqlite", "file is not a database"),
    ("foreign-sqlite", "is an SQLite database but not a camsweep store (tables inventory)"),
])
@pytest.mark.parametrize("name,words,writes", ALL, ids=[x[0] for x in ALL])
def test_what_is_not_a_store_is_refused_by_every_command_and_left_as_it_was(
        name, words, writes, case, message, tmp_path, capsys):
    db = _make(case, tmp_path)
    before = sorted(os.listdir(tmp_path))
    content = Path(db).read_bytes() if Path(db).is_file() else None
    to = name == "push --to"
    if to:
        _local_store(tmp_path)
        before = sorted(os.listdir(tmp_path))
    rc = main(_argv(words, tmp_path, db, to=to))
    err = capsys.readouterr().err
    assert rc == 2 and "camsweep: error: " in err and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert reached == []  # nothing started: no TUI, no lab
    if content is not None:
        assert Path(db).read_bytes() == content  # no camsweep table written into somebody else's database
    assert sorted(os.listdir(tmp_path)) == before  # no -wal, -shm or lock file left beside it


@pytest.mark.parametrize("name,words,writes", ALL, ids=[x[0] for x in ALL])
def test_no_db_means_the_same_default_for_every_command(name, words, writes, tmp_path, capsys):
    default = tmp_path / "xdg" / "camsweep" / "camsweep.db"
    if name == "push --to":
        _local_store(tmp_path)
        words = ["push", "--db", "{tmp}/local.db", "--to", str(default)]
    rc = main(_argv(words, tmp_path, None))
    err = capsys.readouterr().err
    if writes and name != "demo":
        assert rc == 0, err
        assert "scans" in _tables(str(default))
    elif name == "demo":  # without --db the demo keeps its results in a temporary store of its own
        assert reached == ["lab"] and not default.exists()
    else:
        assert rc == 2 and f"{MISSING} {default}" in err, err
        assert not default.exists()


@pytest.mark.parametrize("name,words,writes", ALL, ids=[x[0] for x in ALL])
def test_unreachable_postgresql_url_is_one_line_error(name, words, writes, tmp_path, capsys):
    if name == "demo":
        pytest.skip("the demo's --db is a file: it keeps the results of a lab scan")
    url = "postgresql://camsweep@127.0.0.1:1/none"  # nothing listens on port 1 of loopback
    to = name == "push --to"
    if to:
        _local_store(tmp_path)
    rc = main(_argv(words, tmp_path, url, to=to))
    out, err = capsys.readouterr()
    if to:  # push keeps the scans for the next push and says why (none waits in this store: exit 0)
        assert rc == 0 and "cannot connect to the store" in err and "0 waiting for the next push" in out, err
    else:
        assert rc == 2 and "camsweep: error: cannot connect to the store postgresql://camsweep@127.0.0.1:1/none" \
            in err, err


@pytest.mark.parametrize("name,words,writes", [x for x in ALL if x[0] not in ("demo", "push --to")],
                         ids=[x[0] for x in ALL if x[0] not in ("demo", "push --to")])
def test_camsweep_db_url_is_taken_as_written(name, words, writes, tmp_path, monkeypatch, capsys):
    """$CAMSWEEP_DB may name a postgresql:// URL: every command connects to it as written (a Path would
    fold its // and look for a file)."""
    url = "postgresql://camsweep@127.0.0.1:1/none"  # nothing listens on port 1 of loopback
    monkeypatch.setenv("CAMSWEEP_DB", url)
    rc = main(_argv(words, tmp_path, None))
    err = capsys.readouterr().err
    assert rc == 2 and f"camsweep: error: cannot connect to the store {url}" in err, err


@pytest.mark.parametrize("name,words,writes", ALL, ids=[x[0] for x in ALL])
def test_unreadable_file_is_refused_by_every_command(name, words, writes, open_tmp):
    """A store this user may not read (mode 000): as root, checked in a child that has given up root."""
    from scanner.store import Store

    tmp_path = open_tmp
    db = tmp_path / "s.db"
    Store(db).close()
    os.chmod(db, 0)
    to = name == "push --to"
    if to:
        local = tmp_path / "local.db"
        Store(local).close()
        os.chmod(local, 0o644)
    argv = _argv(words, tmp_path, str(db), to=to)
    _preload(argv)
    rc, err = _run_unprivileged(argv, tmp_path)
    assert rc == 2 and f"camsweep: error: cannot read the store {db}: permission denied" in err, err


@pytest.fixture
def open_tmp():
    """A directory a child that gave up root can use (pytest's own are its owner's only)."""
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="camsweep-test-"))
    os.chmod(d, 0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _preload(argv: list[str]) -> None:
    """Import what the command imports lazily, so that a child without root can run it (the interpreter's
    own files may be readable by root only)."""
    import importlib

    for mod in ("scanner.report", "scanner.report.model", "scanner.diff", "scanner.blocklist", "scanner.plan",
                "scanner.push", "scanner.pgstore", "scanner.store", "scanner.engine", "scanner.targets",
                "scanner.credentials", "scanner.ports", "scanner.macsources", "scanner.notify", "scanner.logs",
                "scanner.evidence", "scanner.private", "scanner.report.escape", "fingerprints", "platformdirs"):
        importlib.import_module(mod)
    from scanner.cli import build_parser

    build_parser(argv)


def _run_unprivileged(argv: list[str], tmp: Path) -> tuple[int, str]:
    """``main(argv)`` in a forked child (as nobody when this is root); its exit code and stderr."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 3
        try:
            os.close(r)
            os.dup2(w, 2)
            sys.stderr = os.fdopen(os.dup(w), "w")  # pytest's capture is not fd 2
            os.environ.update(HOME=str(tmp), XDG_CONFIG_HOME=str(tmp / "config"))  # root's own are closed to it
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            code = main(argv)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent on stderr
            print(f"child: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as fh:
        err = fh.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), err
