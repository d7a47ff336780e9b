# PlexSync developer commands. `make test` and `make demo` work on a fresh machine:
# they create .venv from requirements-dev.txt and fetch Stash's GraphQL schema wheel themselves.
# `make package` needs nothing but python3.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SCHEMA_WHEEL := .cache/stash-schema/stash_graphql_client-0.12.12-py3-none-any.whl
# A second venv with plexapi and requests at the floors requirements.txt allows (requirements-floor.txt).
FLOOR_VENV := .venv-floor
FLOOR_PY := $(FLOOR_VENV)/bin/python
# What the floor venv runs: the tests that use plexapi's and requests' API. The integration tier
# calls plexapi directly against the Plex emulator; these end-to-end files sync, reconcile, scan,
# probe and identify through real plugin processes. Left out (they exercise the queue, the
# breaker's timing, the hook's standard-library path and the log protocol, no other API, and would
# add ~2 min): test_outages, test_drain_reliability, test_entrypoint_hook, test_logging, test_demo,
# test_dependencies.
FLOOR_TESTS := tests/integration tests/e2e/test_automatic_sync.py tests/e2e/test_tasks.py \
	tests/e2e/test_install.py tests/e2e/test_new_scenes.py tests/e2e/test_reconcile.py

.PHONY: lint test demo torture bench package clean venv schema

$(PY): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(PY)

$(FLOOR_PY): requirements.txt requirements-dev.txt requirements-floor.txt
	$(PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c requirements-floor.txt
	touch $(FLOOR_PY)

venv: $(PY)

# The Stash emulator serves Stash's real schema, read out of this wheel (never imported: it wants Python >= 3.12).
$(SCHEMA_WHEEL): | $(PY)
	$(PY) -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
		--python-version 3.12 stash-graphql-client==0.12.12 -d .cache/stash-schema

schema: $(SCHEMA_WHEEL)

# Both runs spread the tests over PYTEST_WORKERS processes (pytest-xdist; worksteal evens out the
# long ones). Most tests spend their time waiting for plugin processes, breaker pauses and
# probes, not computing, so 4 workers pay off on 2 cores too. PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 4
XDIST := -n $(PYTEST_WORKERS) --dist worksteal

test: $(PY) $(FLOOR_PY) $(SCHEMA_WHEEL) lint
	$(PY) -m pytest -q $(XDIST)
	PLEXSYNC_FLOOR=1 $(FLOOR_PY) -m pytest -q $(XDIST) $(FLOOR_TESTS)

# ruff (configured in pyproject.toml): lint and format check of the whole tree, emulators included.
lint: $(PY)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

torture: $(PY) $(SCHEMA_WHEEL)
	PLEXSYNC_TORTURE=1 $(PY) -m pytest -q -m torture

demo: $(PY) $(SCHEMA_WHEEL)
	$(PY) -m tools.demo

bench: $(PY) $(SCHEMA_WHEEL)
	$(PY) -m bench

package:
	$(PYTHON) -m tools.package dist

clean:
	rm -rf dist .pytest_cache
