# Two entry points (see README): `make demo` runs the main job on the embedded default, `make test` the tests.
# Both create .venv idempotently: the install step reruns only when pyproject.toml changes.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lfbench-installed

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

# The main job on the embedded default: every post-hoc method on the tiny model and the generated suite,
# then the Pareto report and the analytic Fig. 1(b). Rerunning resumes the sweep (finished cells are kept).
DEMO ?= results/demo
demo: $(STAMP)
	$(VENV)/bin/lfbench sweep --frames 8,64,512 --out $(DEMO)
	$(VENV)/bin/lfbench pareto $(DEMO)
	$(VENV)/bin/lfbench figures --analytic --out $(DEMO)/figures

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check liteframe_bench methods suites tests examples

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
