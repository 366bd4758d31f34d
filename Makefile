# `make test` and `make demo` bootstrap .venv on first use: a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# a second venv with the lowest versions pyproject.toml allows of the runtime dependencies
LOWEST := .venv-lowest
LOWEST_STAMP := $(LOWEST)/.installed

.PHONY: test lint typecheck pytest test-lowest demo bench dist clean

# the extras the tests need, and the `dev` dependency group (PEP 735: pip >= 25.1 reads `--group`)
DEV_INSTALL := -e '.[schema,otel,redis]' --group dev

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade 'pip>=25.1'
	$(BIN)/python -m pip install --quiet $(DEV_INSTALL)
	touch $(STAMP)

$(LOWEST_STAMP): pyproject.toml constraints/lowest.txt
	test -x $(LOWEST)/bin/python || $(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet --upgrade 'pip>=25.1'
	$(LOWEST)/bin/python -m pip install --quiet -c constraints/lowest.txt $(DEV_INSTALL)
	touch $(LOWEST_STAMP)

test: lint typecheck pytest test-lowest

lint: $(STAMP)
	$(BIN)/ruff check deltaflow tests benchmarks
	$(BIN)/ruff format --check deltaflow tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy
	# users' view: events typed as the Event union (cases that must pass and must fail)
	$(BIN)/mypy --strict tests/typing

pytest: $(STAMP)
	$(BIN)/pytest

# the suite again on the lowest allowed openai, pydantic, reactivex and structlog (constraints/lowest.txt),
# less the heavy suites marked `once`, whose subject (a browser, npm's clients, a Redis Cluster) is not a floor
test-lowest: $(LOWEST_STAMP)
	$(LOWEST)/bin/pytest -m "not once"

demo: $(STAMP)
	$(BIN)/python -m deltaflow demo

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

# the wheel and the sdist in dist/, checked: metadata that renders on the index (twine), and the contents
# a user or a packager needs (tests/dist_contents.py, which tests/test_install.py runs too)
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*
	$(BIN)/python -m tests.dist_contents dist

clean:
	rm -rf $(VENV) $(LOWEST) .mypy_cache .pytest_cache .ruff_cache dist
