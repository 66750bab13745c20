"""`camsweep` entry point: parses arguments and calls the core. stdout = results, stderr = diagnostics."""

from __future__ import annotations

import argparse
import importlib
import sys

from scanner import __version__
from scanner.commands import COMMANDS
from scanner.errors import CamsweepError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="camsweep",
        description="Find restricted-brand cameras and recorders (Hikvision, Dahua, Huawei, ZTE, Hytera, "
        "their subsidiaries and relabels) on networks you name, and plan their replacement.",
    )
    parser.add_argument("--version", action="version", version=f"camsweep {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"scanner.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"scanner.commands.{name}":
                continue  # a command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
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
