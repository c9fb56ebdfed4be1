# The few verbs people type. `make run` and `make test` are the README's two commands.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test lint bench bench-full bench-search bench-upload bench-ingest bench-evaluation bench-evaluation-service load fuzz fuzz-native install install-dev demo-reset native

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(VENV)/.runtime $@

## install: the project itself into .venv, editable (`pip install -e .`). setup.py compiles
## the quality engine's C kernels (quality/engine/_native); a changed kernel source or
## build file reinstalls. Without a C compiler the install still succeeds and the engine
## runs its Python path (same numbers, slower); with CI=true a failed kernel build fails.
## The last line says whether the kernels are on. The stamp names this checkout, so a venv
## copied from another checkout installs this one.
NATIVE_SOURCES := $(wildcard quality/engine/_native/*.c quality/engine/_native/*.h marketplace/listings/_native/*.c) quality/engine/_native/sources.py
PACKAGE := $(VENV)/.package$(subst /,_,$(CURDIR))
$(PACKAGE): $(VENV)/.runtime pyproject.toml setup.py $(NATIVE_SOURCES)
	$(PY) -m pip install -q -e .
	@$(PY) -c 'from quality.engine import native; print("quality engine kernels:", native.status())'
	@$(PY) -c 'from marketplace.listings import catalogue_scan; print("catalogue scan:", catalogue_scan.status())'
	touch $@

install: $(PACKAGE)
install-dev: $(VENV)/.dev $(PACKAGE)
native: $(PACKAGE)

## run: the service with embedded defaults (SQLite, filesystem broker, local storage),
## a real worker process and the seeded demo, on 127.0.0.1:$(PORT). Ctrl-C stops both.
run: $(PACKAGE)
	$(PY) manage.py migrate --no-input
	PORT=$(PORT) $(PY) manage.py run_embedded --seed-demo

## test: the whole suite (PostgreSQL, Redis and an S3 endpoint when reachable; see README).
test: $(VENV)/.dev $(PACKAGE)
	$(PY) -m pytest

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .

## bench: the engine against its peers, ingest memory, search latency (bench/run.py).
bench: $(VENV)/.dev $(PACKAGE)
	$(PY) bench/run.py

bench-full: $(VENV)/.dev $(PACKAGE)
	$(PY) bench/run.py --train-scale --search

## bench-search: listing search at SEARCH_LISTINGS listings (default 100k and 1M, one
## PostgreSQL database each, seeded once and reused; --rebuild via SEARCH_ARGS), 1 and 8
## keep-alive clients against /healthz on the same gunicorn; prints issue 18's targets.
SEARCH_LISTINGS ?= 100000 1000000
SEARCH_ARGS ?=
bench-search: $(VENV)/.dev $(PACKAGE)
	$(PY) bench/search_bench.py --search --listings $(SEARCH_LISTINGS) $(SEARCH_ARGS)

## bench-upload: the seller CLI sends 10,000 frames on the embedded default (SQLite, local
## storage, one worker), timed, then killed half-way and resumed (FRAMES to change the size).
FRAMES ?= 10000
bench-upload: $(VENV)/.dev $(PACKAGE)
	$(PY) bench/upload_bench.py --frames $(FRAMES)

## bench-validate: `python -m datasets validate` on a train-scale COCO file and a YouTube-VIS
## file of comparable size (generated, seeded) against pycocotools' COCO() / json.load of
## the same file: seconds and peak RSS (VALIDATE_ARGS: --python-path, --keep DIR, --quick).
VALIDATE_ARGS ?=
bench-validate: $(VENV)/.dev $(PACKAGE)
	$(PY) bench/validate_bench.py $(VALIDATE_ARGS)

## bench-ingest: the worker's ingest (validate, mask cache, scene statistics, audit sample
## strata) of a train-scale COCO file and a YouTube-VIS file of comparable size (generated,
## seeded), each step's seconds and peak RSS, against pycocotools' COCO() / json.load of the
## same file; prints issue 18's targets (INGEST_ARGS: --keep DIR, --coco PATH, --ytvis PATH).
## `make bench` runs it on small files.
INGEST_ARGS ?=
bench-ingest: $(VENV)/.dev $(PACKAGE)
	$(PY) bench/ingest_bench.py --train-scale $(INGEST_ARGS)

## bench-evaluation: peak memory of a buyer evaluation on a large version (the mask cache)
## next to parsing its annotation JSON; BENCH_IMAGES images (default 20000).
BENCH_IMAGES ?= 20000
bench-evaluation: $(VENV)/.dev $(PACKAGE)
	$(PY) bench/evaluation_bench.py --images $(BENCH_IMAGES)

## bench-evaluation-service: a buyer's POST .../evaluations/ of the model workload to the
## finished report on the embedded default (SQLite, filesystem broker, local storage, a
## worker process) beside the engine's warm time; EVAL_IMAGES images of 100 predictions
## each (default 100; 1000 is the issue's 100,000 predictions, also `--full`).
EVAL_IMAGES ?= 100
bench-evaluation-service: $(VENV)/.dev $(PACKAGE)
	$(PY) bench/evaluation_service_bench.py --images $(EVAL_IMAGES)

## load: gunicorn on 127.0.0.1, buyers searching/downloading and sellers uploading for
## LOAD_SECONDS (default 30); prints throughput, p50/p95/p99, error rate, gunicorn RSS.
LOAD_SECONDS ?= 30
load: $(VENV)/.dev $(PACKAGE)
	$(PY) load/run.py --seconds $(LOAD_SECONDS)

## fuzz: the schemathesis run of tests/security with many examples per operation and role.
FUZZ_EXAMPLES ?= 50
fuzz: $(VENV)/.dev
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest tests/security/test_fuzz_schema.py -q --timeout 3600

## fuzz-native: coverage-guided fuzzing (atheris/libFuzzer) of the engine's C kernels, built
## with AddressSanitizer and UndefinedBehaviorSanitizer, FUZZ_SECONDS per target (7 targets)
## from the corpus in tests/fuzz/corpus/. Needs clang and its runtimes (.ci/run installs them).
FUZZ_SECONDS ?= 30
fuzz-native: $(VENV)/.dev
	$(PY) tests/fuzz/run.py --seconds $(FUZZ_SECONDS)
