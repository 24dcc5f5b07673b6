# Hybridsite: `make run` serves everything, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench install services clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m hybridsite.launcher run

services: $(STAMP)
	$(BIN)/python -m hybridsite.launcher services

test: $(STAMP)
	$(BIN)/python -m hybridsite.launcher test $(ARGS)

clean:
	rm -rf var/
