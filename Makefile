# Set-up and entry points. `make demo` and `make test` each do the whole set-up on a fresh machine
# (virtualenv + pip install, npm ci for anvil and solc-js) and then run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test bench fixtures check-fixtures clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(BIN)/.installed node_modules/.installed

demo: setup
	$(BIN)/indexer demo

test: setup
	$(BIN)/python -m pytest -q

# Benchmarks (not tests): each script prints a table with ratios against a baseline measured in the same run.
bench: setup
	for f in bench/*.py; do $(BIN)/python $$f || exit 1; done

# Recompile contracts_fixtures/src into contracts_fixtures/artifacts (commit the result).
fixtures: node_modules/.installed
	node contracts_fixtures/compile.mjs

check-fixtures: node_modules/.installed
	node contracts_fixtures/compile.mjs --check

clean:
	rm -rf $(VENV) node_modules indexer.db indexer.db-wal indexer.db-shm .pytest_cache .hypothesis
