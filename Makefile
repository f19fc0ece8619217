# Daily commands. `make test` is the README's test command and what CI runs.
# Everything runs in the project's .venv (made by ./setup.sh) without activating it.
VENV := $(CURDIR)/.venv
PY ?= $(VENV)/bin/python
export PATH := $(VENV)/bin:$(PATH)
export VIRTUAL_ENV := $(VENV)
export XDG_RUNTIME_DIR ?= /tmp

.PHONY: setup test filecheck lint models bench-compile
setup:            ## install everything (apt + pip) and run the default model on both backends
	./setup.sh
test:             ## the whole suite: lit/FileCheck (run from pytest) and pytest
	$(PY) -m pytest -q tests
filecheck:        ## only the FileCheck tests
	lit -v tests/filecheck
lint:             ## ruff, with the rule set in pyproject.toml
	$(PY) -m ruff check nnjit tests tools bench examples
models:           ## tiny test models (tests/models) and full-size ones (models/, needs torch)
	$(PY) tools/build_models.py --tiny
	$(PY) tools/build_models.py --full
bench-compile:    ## compile time of BERT-base and per-kernel-variant generation time
	$(PY) bench/compile_time.py
