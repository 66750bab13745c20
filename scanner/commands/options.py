"""What the commands share: the ``--db`` option and the one way to open the store it names, the option
blocks several commands take (``--policy``/``--policy-file``/``--catalog``), and argparse value checks.

Opening the store (:func:`open_store`), for every command alike:

* no ``--db``: ``$CAMSWEEP_DB`` (a path or a ``postgresql://`` URL), else ``camsweep.db`` in the user data
  directory (:func:`scanner.store.default_target`);
* a ``postgresql://`` URL: opened as it is (the database must exist; camsweep's tables are made on first
  use, see docs/many-sites.md);
* a file that is missing: created by the commands that write scans (``scan``, ``demo``, ``tui``, which
  starts scans from inside, ``push --to``), refused by the others (they read what a scan stored):
  ``no camsweep store at PATH``;
* a directory, a file this user cannot read (or, to create it, write), or an SQLite database that is not
  a camsweep store (tables, but no ``_migrations``), or a file that is not SQLite at all: refused, by
  every command, before anything is written to it (``demo``: before the lab is built). Every refusal is
  a :class:`~scanner.errors.StoreError`: one line, exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from scanner.errors import StoreError

if TYPE_CHECKING:
    from scanner.store import Store

SQLITE_NOTADB = 26  # sqlite3.DatabaseError.sqlite_errorcode of a file that is not a database
DB_DEFAULT = "default: $CAMSWEEP_DB, else camsweep.db in your user data directory"


def add_db_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, creates: bool,
                  what: str = "the store") -> None:
    """``--db PATH|URL``; ``creates``: the command makes a missing file (it writes scans) or refuses it."""
    file = "a file (made when missing)" if creates else "a file (it must exist: `camsweep scan` makes one)"
    parser.add_argument("--db", default=None, metavar="PATH|URL",
                        help=f"{what}: {file} or a postgresql:// URL ({DB_DEFAULT})")


def add_policy_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup, policy_help: str,
                       *, default: str | None = None, catalog: bool = False) -> None:
    """``--policy``, ``--policy-file`` and (for the commands that suggest replacements) ``--catalog``."""
    parser.add_argument("--policy", default=default, help=policy_help)
    parser.add_argument("--policy-file", metavar="FILE",
                        help="your own lists and policies (YAML; see README); --policy names one")
    if catalog:
        parser.add_argument("--catalog", metavar="PATH",
                            help="a replacement catalog YAML overriding the shipped one")


def add_actions(parser: argparse.ArgumentParser, dest: str) -> argparse._SubParsersAction:
    """The sub-actions of a command (``lab up|status|down``); the command alone prints its help, exit status 2."""
    actions = parser.add_subparsers(dest=dest, metavar="ACTION")
    parser.set_defaults(func=lambda args: (parser.print_help(sys.stderr), 2)[1])
    return actions


def add_output_option(parser: argparse.ArgumentParser) -> None:
    """``-o/--output FILE``; every command that takes it writes the file whole, mode 0600 (scanner/private.py)."""
    parser.add_argument("-o", "--output", default="-", metavar="FILE", help="file to write, mode 0600 (default: stdout)")


def add_format_option(parser: argparse.ArgumentParser, formats: Sequence[str], default: str, what: str) -> None:
    """``--format/-f``, chosen by :func:`chosen_format` when not given."""
    parser.add_argument("--format", "-f", choices=formats, default=None,
                        help=f"{what} format (default: from the -o file's extension, else {default})")


def chosen_format(args: argparse.Namespace, formats: Sequence[str], default: str) -> str:
    """``--format``, else the one the ``-o`` file's extension names (``.htm`` is html), else ``default``."""
    if args.format:
        return str(args.format)
    ext = Path(args.output).suffix.lower().lstrip(".") if args.output != "-" else ""
    ext = "html" if ext == "htm" else ext
    return ext if ext in formats else default


def store_target(db: str | os.PathLike[str] | None) -> str:
    """What ``--db`` names: the value given, else ``$CAMSWEEP_DB``, else the file in the user data directory."""
    from scanner.store import default_target

    return str(db) if db is not None else default_target()


def _foreign_tables(path: Path) -> list[str]:
    """The tables of an SQLite file that is not a camsweep store (has tables, none of them ``_migrations``);
    [] for a camsweep store or an empty database. A file that is not SQLite at all is refused here as the
    store would refuse it; any other trouble reading it is left to the store to report."""
    if path.stat().st_size == 0:
        return []
    try:
        conn = sqlite3.connect(path.absolute().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error:
        return []
    try:
        names = [r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")]
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", None) == SQLITE_NOTADB:
            raise StoreError(f"cannot open the store {path}: {exc}") from None
        return []
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.close()
    return [] if not names or "_migrations" in names else sorted(names)


def check_store_file(db: str | os.PathLike[str] | None, *, create: bool) -> None:
    """Refuse what :func:`open_store` refuses, without opening anything (the module's docstring says what)."""
    from scanner.pgstore import is_pg_url

    target = store_target(db)
    if is_pg_url(target) or target == ":memory:":
        return
    path = Path(target)
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not a camsweep store; give --db a file name")
    if not path.exists():
        if not create:
            raise StoreError(f"no camsweep store at {path}; run `camsweep scan` first or give --db PATH|URL")
        return
    if not os.access(path, os.R_OK):
        raise StoreError(f"cannot read the store {path}: permission denied")
    if create and not os.access(path, os.W_OK):
        raise StoreError(f"cannot write to the store {path}: permission denied")
    foreign = _foreign_tables(path)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise StoreError(f"{path} is an SQLite database but not a camsweep store (tables {shown}); "
                         "give --db another file")


def open_store(db: str | os.PathLike[str] | None, *, create: bool, recover: bool = True) -> Store:
    """The store ``--db`` names (see the module's docstring); ``create``: a missing file is made, not refused."""
    from scanner.store import Store

    check_store_file(db, create=create)
    return Store(store_target(db), recover=recover)


# -- argparse value checks -------------------------------------------------------------------------------

def whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: a whole number from ``low`` up to ``high`` (no upper bound when None)."""
    def check(v: str) -> int:
        try:
            n = int(v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{v!r} is not a whole number") from None
        if n < low or (high is not None and n > high):
            raise argparse.ArgumentTypeError(f"must be at least {low}" if high is None
                                             else f"must be between {low} and {high}")
        return n
    return check


def number(accept: Callable[[float], bool], message: str) -> Callable[[str], float]:
    """An argparse ``type``: a number for which ``accept`` holds (NaN never does), else ``message``."""
    def check(v: str) -> float:
        try:
            n = float(v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{v!r} is not a number") from None
        if not accept(n):
            raise argparse.ArgumentTypeError(message)
        return n
    return check
