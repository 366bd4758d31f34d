# `make test` and `make demo` bootstrap .venv on first use: a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck pytest demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check deltaflow tests benchmarks
	$(BIN)/ruff format --check deltaflow tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy
	# users' view: events typed as the Event union (cases that must pass and must fail)
	$(BIN)/mypy --strict tests/typing

pytest: $(STAMP)
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/python -m deltaflow demo

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
