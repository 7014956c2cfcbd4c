from __future__ import annotations

import subprocess
import sys

import pff
from pff.cli import main


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert capsys.readouterr().out.strip() == f"pff {pff.__version__}"


def test_help_lists_usage(capsys):
    assert main([]) == 0
    assert "usage: pff" in capsys.readouterr().out


def test_console_script_runs_as_module():
    done = subprocess.run([sys.executable, "-m", "pff", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    assert "Predictive Filter Flow" in done.stdout
