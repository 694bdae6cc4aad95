"""The `reid` command dispatcher: help, unknown commands, user errors as one line."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from reid import cli
from reid.errors import ConfigError


def test_help_lists_the_command_groups(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("data", "train", "evaluate"):
        assert command in out


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["fly"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_user_errors_print_one_line_and_exit_2(monkeypatch, capsys):
    def broken(_args):
        raise ConfigError("unknown recipe 'nope'; choose one of: smc_ecd, ...")

    monkeypatch.setattr(cli, "build_parser", lambda: _FixedParser(argparse.Namespace(func=broken)))
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("reid: error: unknown recipe 'nope'")
    assert "Traceback" not in err


class _FixedParser:
    def __init__(self, namespace):
        self._namespace = namespace

    def parse_args(self, _argv):
        return self._namespace


def test_console_script_and_module_entry_point_work():
    out = subprocess.run([sys.executable, "-m", "reid", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "reid" in out.stdout
