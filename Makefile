# `make demo` and `make test` each set up a fresh machine by themselves.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck unit system-deps real-apiserver bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Debian packages the integration tests and benchmarks use (peers, Prometheus); installed only when missing.
SYSTEM_PACKAGES := wrk nginx-light haproxy prometheus
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "missing Debian packages:$$missing (run as root or install them)"; fi; \
	fi

# The controller's real test tier: kube-apiserver + etcd built from Debian's packages into
# ~/.cache/smi-bridge/kube-apiserver, only when missing (about 4 minutes the first time).
real-apiserver: system-deps
	tests/controller/realapi.sh build

lint: $(STAMP)
	$(BIN)/ruff check smi_bridge backends proxy tests benchmarks
	$(BIN)/ruff format --check smi_bridge backends proxy tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) system-deps real-apiserver
	$(BIN)/pytest -q -p no:cacheprovider

test: lint typecheck unit

demo: $(STAMP) system-deps
	@echo "== smi-bridge lint fixtures/demo"
	$(BIN)/smi-bridge lint --summary fixtures/demo
	@echo "== smi-bridge translate --to all (objects in out/demo/<target>/; what did not translate exactly:)"
	$(BIN)/smi-bridge translate --to all fixtures/demo -o out/demo --overwrite
	@for t in out/demo/*/; do echo "   $$t: $$(ls $$t | wc -l) objects"; done
	@echo "== smi-proxy on the demo: 1,000 requests"
	$(BIN)/smi-bridge verify --demo fixtures/demo

bench: $(STAMP) system-deps
	$(BIN)/python benchmarks/lint.py
	$(BIN)/python benchmarks/translate.py
	$(BIN)/python benchmarks/proxy.py
	$(BIN)/python benchmarks/migrate.py
	$(BIN)/python benchmarks/metrics.py
	$(BIN)/python benchmarks/controller.py

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
