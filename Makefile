# Two entry points (see README): `make demo` runs the main job on the embedded default, `make test` the tests.
# Both create .venv idempotently: the install step reruns only when pyproject.toml changes. The ray extra is installed
# too: tests/test_ray_executor.py runs sweeps on a Ray cluster it starts.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lfbench-installed

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev,ray]'
	@touch $(STAMP)

# The main job on the embedded default: the zoo's trained mini InternVL3, every 16x reducer and LiteFrame on the
# generated synth questions answered in words (synth_open, 300 questions per cell: where the methods differ most;
# mini answers 39.0% of them multiple choice, LiteFrame 34.0%, see the README), then the Pareto report, the paper's figures in miniature (reports/mini.yaml) and the
# analytic Fig. 1(b) at real scale. Rerunning resumes (finished cells are kept).
DEMO ?= results/demo
LFB := $(VENV)/bin/lfbench
DEMO_METHODS ?= baseline,wap,avgpool,maxpool,subsample,random,tome,prumerge,fastvid:retain=0.0625,liteframe-ctd,liteframe
demo: $(STAMP)
	$(LFB) sweep --model mini --suites synth_open --methods $(DEMO_METHODS) --frames 8,16 --out $(DEMO)
	$(LFB) sweep --model mini --suites synth_open --methods baseline,wap,liteframe,wap:ratio=4 --frames 32 --out $(DEMO)
	$(LFB) sweep --model mini --suites synth_open --methods wap,liteframe --frames 64,128 --out $(DEMO)
	$(LFB) pareto $(DEMO)
	$(LFB) figures $(DEMO) --spec reports/mini.yaml
	$(LFB) figures --analytic --out $(DEMO)/figures/analytic

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check liteframe_bench methods suites tests examples

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
