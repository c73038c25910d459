# Two entry points for users: `make run` (guided demo) and `make test` (every test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint typecheck clean i18n

$(BIN)/socklab: pyproject.toml
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3 venv support is missing; installing Debian's python3-venv"; \
	  rm -rf $(VENV); \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq python3-venv \
	  && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.test-extras: $(BIN)/socklab
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

run: $(BIN)/socklab
	$(BIN)/socklab demo

lint: $(VENV)/.test-extras
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(VENV)/.test-extras
	$(BIN)/mypy

# Over the cores with pytest-xdist (at most 4 workers: more would mostly load the timing bounds
# of the robustness tests), then, alone, the tests that count every packet on loopback.
test: $(VENV)/.test-extras lint typecheck
	$(BIN)/python -m pytest -n auto --maxprocesses 4 -m "not slow and not serial"
	$(BIN)/python -m pytest -m "serial and not slow"

# Merge the German catalogue parts and compile them into the package (commit the .mo).
i18n: $(VENV)/.test-extras
	$(BIN)/python scripts/compile_catalogs.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
