# Two commands a new user needs:  `make demo` (the main job) and `make test`.
# Both create/update the local virtualenv .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench sweep clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# Pin torch first: torch==2.13.0 is the CPU wheel; an unpinned torch pulls a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m mapreg compare --prior laplace --b 0.5
	$(PY) -m mapreg compare --prior gaussian --sigma 0.5
	$(PY) -m mapreg compare --prior laplace --b 0.5 --likelihood bernoulli

test: $(STAMP)
	MPLBACKEND=Agg $(PY) -m pytest -q
	$(VENV)/bin/ruff check mapreg tests benchmarks

lint: $(STAMP)
	$(VENV)/bin/ruff check mapreg tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_map.py
	$(PY) benchmarks/bench_glm.py --threads 1

# 1,500 hostile random problems, new ones every day (seeded by the date), and the 378 hostile
# GLM problems (exit 1 on any DISAGREE); exit 1 on any failure
sweep: $(STAMP)
	MPLBACKEND=Agg $(PY) benchmarks/sweep.py
	MPLBACKEND=Agg $(PY) benchmarks/hostile_glm.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
