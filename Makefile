# Two entry points (see README): `make demo` runs the main job on the embedded default, `make test` the tests.
# Both create .venv idempotently: the install step reruns only when pyproject.toml changes.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lfbench-installed

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade -q pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/lfbench ls
	$(VENV)/bin/lfbench bench reducers --out results/bench-reducers.json

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check liteframe_bench methods suites tests examples

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
