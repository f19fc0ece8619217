# Daily commands. `make test` is the README's test command and what CI runs.
# Everything runs in the project's .venv (made by ./setup.sh) without activating it.
VENV := $(CURDIR)/.venv
PY ?= $(VENV)/bin/python
export PATH := $(VENV)/bin:$(PATH)
export VIRTUAL_ENV := $(VENV)
export XDG_RUNTIME_DIR ?= /tmp

.PHONY: setup test filecheck lint models bench-compile fuzz
setup:            ## install everything (apt + pip) and run the default model on both backends
	./setup.sh
test:             ## the whole suite: lit/FileCheck (run from pytest) and pytest
	$(PY) -m pytest -q tests
filecheck:        ## only the FileCheck tests
	lit -v tests/filecheck
fuzz:             ## differential fuzzing: FUZZ_COUNT random graphs (seed FUZZ_SEED) on both backends vs onnxruntime
	@# 2,000 graphs by default; 20 in the benchmarks' smoke mode (NNJIT_BENCH_SMOKE=1, the docs test)
	NNJIT_FUZZ_COUNT=$(or $(FUZZ_COUNT),$(if $(NNJIT_BENCH_SMOKE),20,2000)) NNJIT_FUZZ_SEED=$(or $(FUZZ_SEED),1) NNJIT_FUZZ_KEEP_GOING=1 \
		$(PY) -m pytest -q -s -p no:cacheprovider tests/test_fuzz.py
lint:             ## ruff, with the rule set in pyproject.toml
	$(PY) -m ruff check nnjit tests tools bench examples
models:           ## tiny test models (tests/models) and full-size ones (models/, needs torch)
	$(PY) tools/build_models.py --tiny
	$(PY) tools/build_models.py --full
bench-compile:    ## compile time of BERT-base and per-kernel-variant generation time
	$(PY) bench/compile_time.py
