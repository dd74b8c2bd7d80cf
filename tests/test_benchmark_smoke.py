"""The benchmark script keeps working (its --quick mode; timings are not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_map.py"


def test_benchmark_quick_mode_runs_and_prints_the_table(tmp_path):
    out = tmp_path / "table.md"
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "| prior | n | d | MAP ms" in proc.stdout
    rows = [line for line in out.read_text().splitlines() if line.startswith("| gaussian")
            or line.startswith("| laplace")]
    assert len(rows) == 4


GLM_BENCH = BENCH.parent / "bench_glm.py"


def test_glm_benchmark_quick_mode_runs_and_prints_the_table(tmp_path):
    out = tmp_path / "glm_table.md"
    proc = subprocess.run([sys.executable, str(GLM_BENCH), "--quick", "--threads", "1",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "| prior | n | d | MAP ms | user ms | penalized ms" in proc.stdout
    rows = [line for line in out.read_text().splitlines() if line.startswith("| gaussian")
            or line.startswith("| laplace")]
    assert len(rows) == 2
    # The MAP and the user-written model agree with the penalized solver (stderr summary).
    assert proc.stderr.count("agree to 1e-6: True") == 2, proc.stderr


POSTERIOR_BENCH = BENCH.parent / "bench_posterior.py"


def test_posterior_benchmark_quick_mode_runs_and_prints_the_table(tmp_path):
    out = tmp_path / "posterior_table.md"
    proc = subprocess.run([sys.executable, str(POSTERIOR_BENCH), "--quick", "--threads", "1",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "| prior | chains x draws (warm-up) | NUTS s |" in proc.stdout
    rows = [line for line in out.read_text().splitlines() if line.startswith("| gaussian")
            or line.startswith("| laplace")]
    assert len(rows) == 2
