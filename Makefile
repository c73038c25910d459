# Two entry points for users: `make run` (guided demo) and `make test` (every test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Every install takes the versions of constraints.txt (and so does the build backend, through
# PIP_CONSTRAINT): a new release of ruff, mypy, babel, pytest or a library changes nothing here
# until `make lock` is run on purpose and the refreshed file is committed.
LOCK := constraints.txt
PIP := PIP_CONSTRAINT=$(CURDIR)/$(LOCK) $(BIN)/python -m pip install --quiet --constraint $(LOCK)

.PHONY: run test lint typecheck clean i18n man lock docs pictures capture-fixture screenshots

$(BIN)/socklab: pyproject.toml $(LOCK)
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3 venv support is missing; installing Debian's python3-venv"; \
	  rm -rf $(VENV); \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq python3-venv \
	  && $(PYTHON) -m venv $(VENV); }
	$(PIP) --upgrade pip
	$(PIP) -e .
	@touch $@

# The test setup has the docs extra too: `make test` builds the documentation site (--strict);
# and the live extra (tests/live starts `socklab live`).
$(VENV)/.test-extras: $(BIN)/socklab
	$(PIP) -e '.[test,docs,live]'
	@touch $@

run: $(BIN)/socklab
	$(BIN)/socklab demo

lint: $(VENV)/.test-extras
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(VENV)/.test-extras
	$(BIN)/mypy

# Over three pytest-xdist workers, then, alone, the tests that count every packet on loopback.
# Three on CI's two cores: the tests mostly wait on the subprocesses they drive (a fresh-clone run
# used 44 % of both cores with two workers, 10 min 29 s in all), and the robustness tests assert
# behaviour, not latency, so a third worker cuts the wait without loosening a bound.
test: $(VENV)/.test-extras lint typecheck
	$(BIN)/python -m pytest -n 3 -m "not slow and not serial" --durations=20
	$(BIN)/python -m pytest -m "serial and not slow" --durations=10

# Merge the German catalogue parts and compile them into the package (commit the .mo).
i18n: $(VENV)/.test-extras
	$(BIN)/python scripts/compile_catalogs.py

# Write man/*.1 from the argparse definitions (commit them; tests/packaging checks they are current).
man: $(VENV)/.test-extras
	$(BIN)/python scripts/make_manpages.py

# The documentation site (mkdocs.yml over docs/, the API reference from the docstrings) into site/,
# offline; --strict turns every broken link or reference into an error. Open site/index.html.
docs: $(VENV)/.test-extras
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# The pictures of the docs (commit them): the ladder of docs/CONCURRENCY.md, drawn from the
# committed capture of a converter conversation, and the chart of docs/PERFORMANCE.md, from a
# short real `bench --compare` on this machine (a few minutes; its figures are this machine's).
# bench exits 4 when a run counted errors, which the iterative model does by design with 100
# clients (the chart shows them); any other status fails.
LADDER_CAPTURE := tests/fixtures/captures/converter-conversation.pcapng
pictures: $(VENV)/.test-extras
	$(BIN)/socklab --lang en capture -r $(LADDER_CAPTURE) --ladder --svg docs/images/capture-ladder.svg
	$(BIN)/socklab --lang en bench --compare --duration 2 --warmup 0.5 \
	  --svg docs/images/bench-compare.svg || [ $$? -eq 4 ]

# Capture that conversation again (Linux, root or CAP_NET_RAW): real servers and clients on loopback.
capture-fixture: $(VENV)/.test-extras
	$(BIN)/python scripts/capture_conversation.py $(LADDER_CAPTURE)

# Refresh docs/images/live-*.png (docs/TEACHING.md) from the browser tests of `socklab live`; as
# root, so the capture runs and the ladder has packets (needs chromium and chromium-driver).
screenshots: $(VENV)/.test-extras
	SOCKLAB_SCREENSHOTS=$(CURDIR)/docs/images $(BIN)/python -m pytest -q -p no:xdist tests/live/test_live_page.py

# Refresh constraints.txt on purpose: the newest releases that satisfy pyproject.toml, installed in
# a throw-away venv and frozen. Run `make test` on the result before committing it.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip setuptools
	.lock-venv/bin/python -m pip install --quiet -e '.[test,docs,live]'
	{ echo "# The versions every install of socklab's development setup takes (make run, make test, CI)."; \
	  echo "# Made by 'make lock' with $$(.lock-venv/bin/python --version); refresh on purpose, then run make test."; \
	  .lock-venv/bin/python -m pip freeze --all --exclude-editable | grep -v '^socklab'; } > $(LOCK)
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) build dist site src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
