"""The proof's shape: the Bayesian side and the penalized side never import each other.

``mapreg.bayes`` (priors, likelihoods, Pyro models, MAP engines, evidence) and
``mapreg.penalized`` (ridge, lasso, GLM solvers, constrained problems, training) may import
only the shared helpers (``mapreg._validation``, ``_centring``, ``_results``, ``errors``);
the penalized side never imports Pyro. Checked on the source (every import statement,
lazy ones inside functions included) and by importing the penalized side in a fresh
interpreter.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mapreg"
SHARED = {"_validation", "_centring", "_results", "errors"}
SIDES = {"bayes": "penalized", "penalized": "bayes"}


def _imports(path: Path, side: str) -> list[tuple[int, str]]:
    """Every module an import statement in ``path`` names, resolved to a dotted name."""
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                parts = ["mapreg", side] + list(path.relative_to(PACKAGE / side).parts[:-1])
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            out.append((node.lineno, base))
            if node.module is None:  # from . import x, y
                out += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return out


@pytest.mark.parametrize("side", sorted(SIDES))
def test_sides_import_only_themselves_and_shared_helpers(side):
    files = sorted((PACKAGE / side).rglob("*.py"))
    assert files, f"mapreg/{side} has no modules"
    bad = []
    for path in files:
        for line, name in _imports(path, side):
            if not name.startswith("mapreg"):
                if side == "penalized" and name.split(".")[0] == "pyro":
                    bad.append(f"{path.name}:{line} imports {name}")
                continue
            parts = name.split(".")
            if len(parts) == 1 or parts[1] == side or parts[1] in SHARED:
                continue
            bad.append(f"{path.name}:{line} imports {name}")
    assert not bad, f"mapreg/{side} reaches outside its side: " + "; ".join(bad)


def test_penalized_side_runs_without_pyro():
    # A bare ``mapreg`` package (its __init__, which imports both sides, not run) and Pyro
    # made unimportable: the penalized side must still import and solve.
    code = (
        "import sys, types\n"
        f"pkg = types.ModuleType('mapreg'); pkg.__path__ = [{str(PACKAGE)!r}]\n"
        "sys.modules['mapreg'] = pkg; sys.modules['pyro'] = None\n"
        "import torch, mapreg.penalized as p\n"
        "X = torch.randn(8, 3, dtype=torch.float64); y = torch.randn(8, dtype=torch.float64)\n"
        "p.ridge(X, y, 1.0); p.lasso(X, y, 0.1)\n"
        "bad = sorted(m for m in sys.modules if m.startswith('mapreg.bayes'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_mapreg_top_level_is_not_a_side():
    # the sides live in their subpackages; no stray side module at the top level
    top = {p.stem for p in PACKAGE.glob("*.py")}
    stray = top & {"priors", "likelihoods", "models", "map", "evidence", "penalized", "linear",
                   "training", "constrained", "glm"}
    assert not stray, f"move {sorted(stray)} into mapreg/bayes or mapreg/penalized"
