"""The command line is a thin layer over compare/convert: output, files, exit codes."""

from __future__ import annotations

import importlib
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from mapreg.cli import main
from mapreg.errors import report_nonconvergence


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


def test_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"mapreg {version('mapreg')}"


@pytest.mark.parametrize("name", ["coef", "coef.", "coef.pgf", "coef.txt"])
def test_plot_needs_a_known_figure_extension(tmp_path, capsys, name):
    path = tmp_path / name
    assert main(["compare", "--prior", "laplace", "--b", "0.5", "--plot", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mapreg: error: --plot must end in a figure extension: ")
    allowed = err.split(" (the format")[0]
    assert "png" in allowed and "svg" in allowed and "pdf" in allowed and "pgf" not in allowed
    assert "is not supported); got" in err
    assert err.count("\n") == 1 and list(tmp_path.iterdir()) == []


def test_plot_and_out_to_a_directory_are_errors(tmp_path, capsys):
    for argv in (["compare", "--prior", "laplace", "--b", "0.5", "--plot", str(tmp_path)],
                 ["path", "--prior", "laplace", "--b", "0.5", "--out", f"{tmp_path}/"],
                 ["lagrange", "--view", "l1-vs-l2", "--out", str(tmp_path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "must name a file, not a directory" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # no hidden ".png"


def test_figure_extension_is_case_insensitive(tmp_path):
    path = tmp_path / "coef.PNG"
    assert main(["compare", "--prior", "laplace", "--b", "0.5", "--plot", str(path)]) == 0
    assert path.stat().st_size > 1000


@pytest.mark.parametrize(
    "argv, message",
    [
        (["0"], "value must be a positive finite number; got 0.0"),
        (["-1"], "value must be a positive finite number; got -1.0"),
        (["inf"], "value must be a positive finite number; got inf"),
        (["1e308", "--to", "torch_mse_sum"], "value must be between 2.23e-308 and 4.49e+307"),
        (["4e307", "--to", "torch_mse_sum"], "lam must be between 2.23e-308 and 2.25e+307"),
        (["1", "--n", "0", "--to", "mean"], "n must be an integer between 1 and"),
        (["1", "--n", "-5", "--to", "mean"], "n must be an integer between 1 and"),
        (["1e-300", "--to", "sigma", "--noise", "1e100"], "lam must be between"),
        (["1", "--to", "sigma", "--noise", "1e300"], "noise must be between 1.49e-154"),
    ],
)
def test_convert_at_the_edges_is_one_clean_line(argv, message, capsys):
    args = ["convert", *argv, "--from", "canonical", "--prior", "gaussian"]
    if "--to" not in args:
        args += ["--to", "mean", "--n", "3"]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("mapreg: error: ")
    assert message in captured.err and captured.err.count("\n") == 1


def test_convert_help_lists_the_conventions(capsys):
    from mapreg.conventions import CONVENTIONS

    with pytest.raises(SystemExit) as exc:
        main(["convert", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in CONVENTIONS:
        assert f"\n  {name} " in out
    assert "d2l = mean" in out


def _warn_then_run(monkeypatch):
    """Make the MAP engine warn (or raise with strict) as a solver short of its tolerance."""
    module = importlib.import_module("mapreg.compare")
    real = module.map_estimate

    def short(*args, **kwargs):
        out = real(*args, **kwargs)
        report_nonconvergence("MAP engine did not converge: KKT residual 1e-3 > 1e-9\n(sic)",
                              kwargs.get("strict", False))
        return out

    monkeypatch.setattr(module, "map_estimate", short)


def test_a_convergence_warning_is_one_line_on_stderr(monkeypatch, capsys):
    _warn_then_run(monkeypatch)
    assert main(["compare", "--prior", "laplace", "--b", "0.5", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["prior"] == "laplace"  # stdout stays valid JSON
    assert captured.err == ("mapreg: warning: MAP engine did not converge: KKT residual 1e-3 > "
                            "1e-9 (sic)\n")


def test_with_strict_non_convergence_is_an_error_with_exit_code_1(monkeypatch, capsys):
    _warn_then_run(monkeypatch)
    assert main(["compare", "--prior", "laplace", "--b", "0.5", "--strict"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("mapreg: error: MAP engine did not converge")
    assert captured.err.count("\n") == 1


def _readme_commands():
    """The ``mapreg ...`` lines inside the README's code blocks (comments stripped)."""
    inside, out = False, []
    for line in (Path(__file__).resolve().parent.parent / "README.md").read_text().splitlines():
        if line.startswith("```"):
            inside = not inside
        elif inside and line.startswith("mapreg "):
            out.append(line.split("#")[0].strip())
    return out


def test_the_readme_has_cli_examples():
    commands = _readme_commands()
    assert len(commands) >= 5
    assert "mapreg compare --prior gaussian --sigma 0.01 --dataset d2l --train --json" in commands


@pytest.mark.parametrize("command", _readme_commands())
def test_every_readme_cli_example_runs_cleanly(command, tmp_path, monkeypatch, capsys):
    """Exit code 0, no traceback or Python warning: stderr holds only 'mapreg: warning:'
    lines, and --json output parses."""
    monkeypatch.chdir(tmp_path)
    try:
        code = main(shlex.split(command)[1:])
    except SystemExit as exc:  # argparse ends --version (and --help) by exiting
        code = exc.code
    assert code == 0
    captured = capsys.readouterr()
    assert all(ln.startswith("mapreg: warning: ") for ln in captured.err.splitlines())
    if "--json" in command:
        assert json.loads(captured.out)["verdict_kind"] in {"agree", "not_unique", "rounding",
                                                           "disagree"}


def test_compare_glm_likelihoods_from_the_shell(capsys, tmp_path):
    for lik in ("bernoulli", "categorical", "poisson"):
        assert main(["compare", "--prior", "laplace", "--b", "0.5", "--likelihood", lik]) == 0
        out = capsys.readouterr().out
        assert "AGREE" in out and f"{lik} likelihood" in out
    path = tmp_path / "glm.png"
    assert main(["compare", "--prior", "elasticnet", "--sigma", "1", "--b", "0.5",
                 "--likelihood", "bernoulli", "--json", "--plot", str(path),
                 "--convention", "canonical"]) == 2  # the elastic net has two lambdas
    assert "mapreg: error:" in capsys.readouterr().err
    assert main(["compare", "--prior", "gaussian", "--sigma", "1", "--likelihood", "poisson",
                 "--json", "--plot", str(path), "--convention", "sklearn_poisson"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["agrees"] and out["likelihood"] == "poisson" and path.stat().st_size > 0
    assert out["requested_convention"]["name"] == "sklearn_poisson"
    assert main(["compare", "--prior", "laplace", "--b", "0.5", "--likelihood", "bernoulli",
                 "--noise", "1"]) == 2
    assert "no noise scale" in capsys.readouterr().err
    assert main(["convert", "0.5", "--from", "sklearn_logistic", "--to", "b", "--prior",
                 "laplace", "--likelihood", "bernoulli"]) == 0
    assert float(capsys.readouterr().out) == pytest.approx(0.5)


# ----------------------------------------------------------------------------- mapreg optim


@pytest.mark.parametrize("argv, expected", [
    # MSELoss(mean) + coupled wd: 1/sigma^2 = n wd / (2 sigma_eps^2) = 20 * 0.01 / 0.5 = 0.4
    ("--optimizer adam --weight-decay 0.01 --loss mse --reduction mean --n 20 --sigma-eps 0.5",
     ["Gaussian prior", "sigma = 1.58114", "canonical lam = 0.1"]),
    # decoupled decay: a box, whatever n (no --n needed for a mean loss)
    ("--optimizer adamw --weight-decay 0.01", ["no prior", "R = 100"]),
    ("--optimizer adam --decoupled --weight-decay 0.5", ["no prior", "R = 2"]),
    # BCE(sum) + coupled wd: 1/sigma^2 = wd
    ("--optimizer sgd --momentum 0.9 --nesterov --weight-decay 0.04 --loss bce_with_logits "
     "--reduction sum", ["Gaussian prior", "sigma = 5 "]),
    # SGDW-style, momentum 0.9: precision wd (1 - mu) = 0.001
    ("--optimizer sgdw --weight-decay 0.01 --momentum 0.9 --loss bce_with_logits "
     "--reduction sum", ["sigma = 31.6228"]),
    # loss + coeff ||w||_1 on a mean BCE: 1/b = n coeff
    ("--l1 0.1 --loss bce_with_logits --n 100", ["Laplace(0, b) prior with b = 0.1"]),
    ("--optimizer sgd", ["flat prior"]),
])
def test_optim_prints_the_implied_prior(argv, expected, capsys):
    assert main(["optim", *shlex.split(argv)]) == 0
    out = capsys.readouterr().out
    for text in expected:
        assert text in out, (text, out)


@pytest.mark.parametrize("argv, message", [
    ("--optimizer adam --weight-decay 0.01", "n .* is required for reduction 'mean'"),
    ("--l1 1 --l2 2", "give one of --weight-decay, --l1 and --l2"),
    ("--optimizer adam --weight-decay -1 --n 5", "weight_decay"),
    ("--optimizer sgd --weight-decay 0.1 --loss bce_with_logits --n 5 --sigma-eps 1",
     "noise_scale"),
])
def test_optim_bad_input_is_one_line(argv, message, capsys):
    assert main(["optim", *shlex.split(argv)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mapreg: error:") and "\n" not in err
    assert re.search(message, err), err


def test_optim_markdown_table(capsys):
    assert main(["optim", "--optimizer", "adamw", "--weight-decay", "1", "--markdown"]) == 0
    assert capsys.readouterr().out.startswith("| group | parameters | prior |")
