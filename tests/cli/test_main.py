"""The command line: help, version, module entry point, demo and units."""

from __future__ import annotations

import subprocess
import sys

import gruasr
from gruasr.cli.main import main
from gruasr.demo import RecallTask, train_recall


def test_help_lists_subcommands(capsys):
    try:
        main(["--help"])
    except SystemExit as stop:
        assert stop.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "units"):
        assert command in out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: gruasr" in capsys.readouterr().out


def test_version_through_python_dash_m():
    done = subprocess.run([sys.executable, "-m", "gruasr", "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"gruasr {gruasr.__version__}"
    assert gruasr.__version__ != "0.0.0+unknown"


def test_units_lists_every_unit(capsys):
    assert main(["units", "--input-size", "4", "--hidden-size", "8"]) == 0
    out = capsys.readouterr().out
    for name in ("gru", "lstm", "rnn", "ligru", "mingru"):
        assert f"\n{name} " in out
    # GRU: 3 gates x (8*4 + 8*8 + 2*8) parameters
    assert " 336" in out.splitlines()[1]


def test_bad_arguments_give_a_clean_error(capsys):
    assert main(["units", "--hidden-size", "0"]) == 1
    assert "hidden_size must be a positive int" in capsys.readouterr().err


def test_demo_runs_and_reports_parity(capsys):
    assert main(["demo", "--gru", "--updates", "5"]) == 0
    out = capsys.readouterr().out
    assert "reference: parameter gradients" in out and "fused: outputs" in out
    assert "GRU accuracy" in out


def test_recall_task_is_learned():
    """The demo's claim, checked: a small GRU learns delayed recall well above chance in a few hundred updates."""
    result = train_recall("gru", updates=250, hidden=32, task=RecallTask(steps=20, delay=3))
    assert result["accuracy_before"] < 0.3
    assert result["accuracy_after"] > 0.9
