"""Property sweep: >= 1,500 hostile random problems through ``mapreg.compare``.

Each problem (``tests/hostile.py``: equicorrelated, uncentred, badly scaled, duplicated,
low-rank integer and constant-column designs; n from 1 to 80, d from 1 to 120; offsets
and units in y; Gaussian, Laplace and elastic-net priors, lambda from 1e-6 lambda_max up) must
keep every promise of ``hostile.check_compare``: no exception or warning, both solvers
converged, both points KKT points by an independent extended-precision check, no bare
DISAGREE. The seeds change every day (``--seed`` defaults to the date), so every CI run-day
covers new problems; a failing seed is printed and reproduces with ``--seed S --count 1``.

Run: ``make sweep`` or ``.venv/bin/python benchmarks/sweep.py [--count 1500] [--seed S]``.
Exit code 1 if any problem fails.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from hostile import DESIGNS, check_compare, make_hostile  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1500)
    today = int(datetime.date.today().strftime("%Y%m%d"))
    parser.add_argument("--seed", type=int, default=today * 10_000,
                        help="first seed (default: today's date x 10000)")
    args = parser.parse_args(argv)
    check_compare(make_hostile(0))  # warm-up (first Pyro trace, lazy imports): not timed
    start = time.perf_counter()
    failed, slowest = [], (0.0, "")
    per_design: dict[str, int] = {}
    verdicts: dict[str, int] = {}
    for seed in range(args.seed, args.seed + args.count):
        p = make_hostile(seed)
        t = time.perf_counter()
        failures, kind = check_compare(p)
        verdicts[kind] = verdicts.get(kind, 0) + 1
        dt = time.perf_counter() - t
        slowest = max(slowest, (dt, p.label))
        kind = DESIGNS[seed % len(DESIGNS)]
        per_design[kind] = per_design.get(kind, 0) + 1
        if failures:
            failed.append(seed)
            print(f"FAIL {p.label}: " + "; ".join(failures), flush=True)
    total = time.perf_counter() - start
    print(f"{args.count} problems from seed {args.seed} in {total:.0f} s "
          f"({', '.join(f'{k} {v}' for k, v in sorted(per_design.items()))}); "
          f"slowest {slowest[0]:.2f} s ({slowest[1]})")
    print("verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())))
    print(f"{args.count - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
