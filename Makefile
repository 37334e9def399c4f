# Set-up and entry points. `make demo` and `make test` each do the whole set-up on a fresh machine
# (virtualenv + pip install, npm ci for anvil and solc-js) and then run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test bench fixtures check-fixtures clean chromium

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

# Two workers (one anvil each), whole files per worker: module fixtures and their order stay as written.
test: setup chromium
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# Headless Chromium for tests/test_dashboard.py: Debian's `chromium` package, installed when missing (as root,
# best effort: without it the dashboard test skips and says why).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null) \
	      || echo "chromium: install failed; tests/test_dashboard.py will skip"; \
	  else echo "chromium: not installed (needs root and apt-get); tests/test_dashboard.py will skip"; fi; }

# Benchmarks (not tests): each script prints a table with ratios against a baseline measured in the same run.
# bench/refresh.py starts its own anvil: the issue's table at 1k and 10k positions (BENCH_SIZES=1000,10000,100000
# adds the optional 100k); it fails only if the warm or fast verdicts differ from a full read's.
BENCH_SIZES ?= 1000,10000
bench: setup
	$(BIN)/python bench/refresh.py --sizes $(BENCH_SIZES)
	$(BIN)/python bench/store_write.py

# Recompile contracts_fixtures/src into contracts_fixtures/artifacts (commit the result).
fixtures: node_modules/.installed
	node contracts_fixtures/compile.mjs

check-fixtures: node_modules/.installed
	node contracts_fixtures/compile.mjs --check

clean:
	rm -rf $(VENV) node_modules indexer.db indexer.db-wal indexer.db-shm .pytest_cache .hypothesis
