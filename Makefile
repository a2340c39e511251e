# `make train` and `make test` set everything up on a fresh machine (a .venv beside this file) and run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: train test test-fast install benchmark clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(PY) train.py

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

benchmark: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) benchmarks/tube_overhead.py
	$(PY) benchmarks/explain_speed.py
	$(PY) benchmarks/callback_overhead.py
	$(PY) benchmarks/model_zoo.py
	$(PY) benchmarks/train_step.py
	$(PY) benchmarks/decode.py
	$(PY) benchmarks/decode.py --memory

clean:
	rm -rf $(VENV) wandb lightning_logs .pytest_cache
