"""The option blocks and value checks the commands share (scanner/commands/options.py)."""

from __future__ import annotations

import argparse

import pytest

from scanner.cli import main
from scanner.commands.options import chosen_format, number, whole_number


@pytest.mark.parametrize("output,fmt,expected", [
    ("-", None, "html"), ("r.HTM", None, "html"), ("r.pdf", None, "pdf"), ("r.json", None, "json"),
    ("r.txt", None, "html"), ("r.csv", "json", "json"), ("dir.csv/r", None, "html"),
])
def test_format_from_the_output_file(output, fmt, expected):
    args = argparse.Namespace(format=fmt, output=output)
    assert chosen_format(args, ("html", "json", "csv", "pdf"), "html") == expected


def test_value_checks_say_what_is_wrong():
    retries = whole_number(0, 10)
    assert retries("3") == 3
    for bad, why in (("x", "'x' is not a whole number"), ("11", "between 0 and 10"), ("-1", "between 0 and 10")):
        with pytest.raises(argparse.ArgumentTypeError, match=why):
            retries(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="at least 1"):
        whole_number(1)("0")
    seconds = number(lambda n: 0 < n <= 3600, "more than 0 and at most 3600")
    assert seconds("2.5") == 2.5
    for bad in ("0", "nan", "inf", "-1", "3601"):
        with pytest.raises(argparse.ArgumentTypeError, match="more than 0"):
            seconds(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="is not a number"):
        seconds("soon")


@pytest.mark.parametrize("argv", [["scan", "127.0.0.1", "--retries", "11"], ["scan", "127.0.0.1", "--timeout", "0"],
                                  ["scan", "127.0.0.1", "--workers", "17"], ["scan", "127.0.0.1", "--rate", "-1"]])
def test_scan_refuses_bad_numbers_before_scanning(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and "camsweep scan: error: argument" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["lab", "plan", "oui", "fingerprints"])
def test_a_command_without_its_action_prints_its_help(command, capsys):
    assert main([command]) == 2
    assert capsys.readouterr().err.startswith(f"usage: camsweep {command} [-h] ACTION")
