# The few verbs people type. `make run` and `make test` are the README's two commands.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test lint bench bench-full load fuzz install install-dev demo-reset native

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(VENV)/.runtime $@

install: $(VENV)/.runtime native
install-dev: $(VENV)/.dev native

## native: the quality engine's C kernels (quality/engine/_native; rebuilt when a source
## changes). Without a C compiler the engine runs its Python path: same numbers, slower.
native: $(VENV)/.runtime
	$(PY) -m quality.engine._native.build --optional

## run: the service with embedded defaults (SQLite, filesystem broker, local storage),
## a real worker process and the seeded demo, on 127.0.0.1:$(PORT). Ctrl-C stops both.
run: $(VENV)/.runtime native
	$(PY) manage.py migrate --no-input
	PORT=$(PORT) $(PY) manage.py run_embedded --seed-demo

## test: the whole suite (PostgreSQL, Redis and an S3 endpoint when reachable; see README).
test: $(VENV)/.dev native
	$(PY) -m pytest

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .

## bench: the engine against its peers, ingest memory, search latency (bench/run.py).
bench: $(VENV)/.dev native
	$(PY) bench/run.py

bench-full: $(VENV)/.dev native
	$(PY) bench/run.py --train-scale --search

## load: gunicorn on 127.0.0.1, buyers searching/downloading and sellers uploading for
## LOAD_SECONDS (default 30); prints throughput, p50/p95/p99, error rate, gunicorn RSS.
LOAD_SECONDS ?= 30
load: $(VENV)/.dev native
	$(PY) load/run.py --seconds $(LOAD_SECONDS)

## fuzz: the schemathesis run of tests/security with many examples per operation and role.
FUZZ_EXAMPLES ?= 50
fuzz: $(VENV)/.dev
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest tests/security/test_fuzz_schema.py -q --timeout 3600
