"""`camsweep` entry point: parses arguments and calls the core. stdout = results, stderr = diagnostics."""

from __future__ import annotations

import argparse
import importlib
import sys

from scanner import __version__
from scanner.commands import COMMANDS
from scanner.errors import CamsweepError


def _chosen_command(argv: list[str]) -> str | None:
    """The subcommand named on the command line, if any (the first word that is not an option)."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
        if word in ("-h", "--help", "--version"):
            return None
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser. With ``argv``, only the chosen command's module is imported (the others
    cost start-up time: a scan or the TUI should not wait for every command's imports)."""
    chosen = _chosen_command(argv) if argv is not None else None
    parser = argparse.ArgumentParser(
        prog="camsweep",
        description="Find restricted-brand cameras and recorders (Hikvision, Dahua, Huawei, ZTE, Hytera, "
        "their subsidiaries and relabels) on networks you name, and plan their replacement.",
    )
    parser.add_argument("--version", action="version", version=f"camsweep {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if chosen is not None and name != chosen:
            sub.add_parser(name)  # named, so the choice list stays whole; never parsed
            continue
        importlib.import_module(f"scanner.commands.{name}").register(sub)  # only the chosen one is loaded
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        if getattr(args, "policy_file", None):  # your own lists and policies, before any command uses them
            from fingerprints.policyfile import install

            install(args.policy_file)
        return int(args.func(args) or 0)
    except CamsweepError as exc:
        print(f"camsweep: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("camsweep: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
