"""The command line is a thin layer over compare/convert: output, files, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mapreg.cli import main


def test_compare_prints_the_table(capsys):
    assert main(["compare", "--prior", "laplace", "--b", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "MAP (Pyro)" in out and "AGREE" in out


def test_compare_json_is_machine_readable(capsys):
    code = main(["compare", "--prior", "gaussian", "--sigma", "0.5", "--json",
                 "--convention", "sklearn_ridge"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["prior"] == "gaussian" and out["agrees"] is True
    assert out["requested_convention"]["name"] == "sklearn_ridge"
    assert out["requested_convention"]["value"] == pytest.approx(16.0)


@pytest.mark.parametrize("ext", ["png", "svg", "pdf"])
def test_compare_writes_the_plot_by_extension(tmp_path, capsys, ext):
    path = tmp_path / f"coef.{ext}"
    assert main(["compare", "--prior", "laplace", "--b", "0.5", "--plot", str(path)]) == 0
    assert path.stat().st_size > 1000
    assert f"figure written to {path}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["compare", "--prior", "laplace", "--b", "-1"],
         "b must be a positive finite number; got -1.0"),
        (["compare", "--prior", "laplace", "--sigma", "1"], "prior 'laplace' takes the scale 'b'"),
        (["compare", "--prior", "gaussian", "--sigma", "1", "--noise", "0"], "noise must be"),
        (["compare", "--prior", "gaussian", "--sigma", "1", "--dataset", "x"], "dataset must be"),
        (["compare", "--prior", "gaussian", "--sigma", "1", "--convention", "nope"],
         "convention"),
        (["compare", "--prior", "gaussian", "--sigma", "1", "--plot", "/nonexistent/dir/f.png"],
         "No such file"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mapreg: error: ") and message in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["compare", "--prior", "cauchy", "--b", "1"], "invalid choice: 'cauchy'"),
        (["compare", "--b", "1"], "the following arguments are required: --prior"),
        (["compare", "--prior", "laplace", "--b", "half"], "invalid float value: 'half'"),
        ([], "required: command"),
    ],
)
def test_argparse_errors_are_one_line_too(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("mapreg: error: ") and message in err and "--help" in err
    assert err.count("\n") == 1


def test_lagrange_needs_a_prior_except_for_l1_vs_l2(tmp_path, capsys):
    assert main(["lagrange", "--out", str(tmp_path / "a.png")]) == 2
    assert "--prior (gaussian or laplace) is required" in capsys.readouterr().err
    assert main(["lagrange", "--view", "l1-vs-l2", "--out", str(tmp_path / "b.png")]) == 0
    assert (tmp_path / "b.png").stat().st_size > 1000


def test_convert(capsys):
    code = main(["convert", "8", "--from", "canonical", "--to", "sklearn_lasso",
                 "--prior", "laplace", "--n", "20"])
    assert code == 0
    assert float(capsys.readouterr().out) == pytest.approx(0.4)


def test_python_dash_m_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "mapreg", "compare", "--prior", "laplace", "--b", "0.5"],
        capture_output=True, text=True, timeout=120, env={"MPLBACKEND": "Agg", "PATH": ""},
    )
    assert proc.returncode == 0, proc.stderr
    assert "AGREE" in proc.stdout
