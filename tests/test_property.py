"""Property tests on hostile random problems (a fast seeded subset of benchmarks/sweep.py,
which runs >= 1,500 new problems every day), and ``compare`` under concurrent calls."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_concurrently
from hostile import DESIGNS, check_compare, make_hostile

from mapreg import compare

# 8 problems of every design (seed % 7 picks the design): about 5 s on 2 cores.
SEEDS = list(range(56))


@pytest.mark.parametrize("seed", SEEDS)
def test_every_promise_holds_on_hostile_problems(seed):
    p = make_hostile(seed)
    assert DESIGNS[seed % len(DESIGNS)] in p.label
    failures, kind = check_compare(p)
    assert failures == [] and kind != "disagree", p.label


def test_compare_from_four_threads_gives_the_serial_answers():
    rng = np.random.default_rng(7)
    jobs = [(rng.standard_normal((25, 40)), rng.standard_normal(25), kind)
            for kind in ("laplace", "gaussian", "laplace", "gaussian")]

    def run(X, y, kind):
        kw = {"b": 0.2} if kind == "laplace" else {"sigma": 0.3}
        return compare(kind, X=X, y=y, noise=0.5, **kw)

    serial = [run(*job) for job in jobs]
    results, errors = run_concurrently(run, jobs)
    assert not errors
    for got, want in zip(results, serial, strict=True):
        assert got == want and got.verdict().startswith("AGREE")
