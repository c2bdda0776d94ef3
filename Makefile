# Two commands for a newcomer: `make demo` and `make test`. Both build .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR := demo-data

.PHONY: demo test lint bench clean

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert (3, 11) <= sys.version_info[:2] < (3, 13), "Python 3.11 or 3.12 is needed (durable_rules does not import on 3.13); set PYTHON=..."'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@# The Adaptive Card validator the Teams tests run (node); without npm those tests skip.
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix tests/notifications/cardcheck --silent --no-audit --no-fund; else echo "npm not found: the Adaptive Card tests will be skipped (they fail in CI)"; fi
	@touch $@

# The served demo: a synthetic force in demo-data/, the scheduler, local mail and Teams sinks,
# and the persona picker on http://127.0.0.1:5000 (Ctrl-C stops it; a second run reuses it).
demo: $(BIN)/.installed
	$(BIN)/trauma-tracker demo --dir $(DEMO_DIR)

# Four workers (pytest-xdist): on a 2-CPU machine the tests wait on subprocesses, servers and
# settle times as much as they compute, so four overlap best (328 s, against 365 s with two). Each worker
# has its own databases, browser and ports.
TEST_WORKERS ?= 4
test: $(BIN)/.installed
	$(BIN)/pytest -n $(TEST_WORKERS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(BIN)/.installed
	-$(BIN)/python bench/ingest.py --rounds 3
	$(BIN)/python bench/scoring.py
	$(BIN)/python bench/rules.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) *.egg-info
