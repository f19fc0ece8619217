# Daily commands. `make test` is the README's test command and what CI runs.
PY ?= python3
export XDG_RUNTIME_DIR ?= /tmp

.PHONY: setup test filecheck lint models bench-compile
setup:            ## install everything (apt + pip) and run the default model on both backends
	./setup.sh
test:             ## the whole suite: lit/FileCheck (run from pytest) and pytest
	$(PY) -m pytest -q tests
filecheck:        ## only the FileCheck tests
	lit -v tests/filecheck
lint:
	ruff check nnjit tests tools bench
models:           ## tiny test models (tests/models) and full-size ones (models/, needs torch)
	$(PY) tools/build_models.py --tiny
	$(PY) tools/build_models.py --full
bench-compile:    ## compile time of BERT-base and per-kernel-variant generation time
	$(PY) bench/compile_time.py
