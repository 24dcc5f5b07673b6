# Hybridsite: `make run` serves everything, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: run test bench install services clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

$(BENCH_STAMP): $(STAMP) requirements-bench.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	touch $(BENCH_STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m hybridsite.launcher run

services: $(STAMP)
	$(BIN)/python -m hybridsite.launcher services

test: $(STAMP)
	$(BIN)/python -m hybridsite.launcher test $(ARGS)

# `make bench` (full, under 10 minutes) or `make bench QUICK=1` (under 2); see bench/run.py.
bench: $(BENCH_STAMP)
	QUICK=$(QUICK) $(BIN)/python -m hybridsite.launcher bench

clean:
	rm -rf var/
