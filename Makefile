# `make demo` and `make test` each create .venv when it is missing and install the project into
# it, with Ray so that the serverless engine's tests run on a real Ray instance.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ITSACAT_DATA ?= data/datasets.h5

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,ray]'
	touch $(STAMP)

# Ends with blue serving the new model on 127.0.0.1:8000 until Ctrl-C.
demo: $(STAMP)
	$(BIN)/itsacat demo --data "$(ITSACAT_DATA)" --serve

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

bench: $(STAMP)
	$(BIN)/python bench/train_speed.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
