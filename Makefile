# PlexSync developer commands. `make test` and `make demo` work on a fresh machine:
# they create .venv from requirements-dev.txt and fetch Stash's GraphQL schema wheel themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SCHEMA_WHEEL := .cache/stash-schema/stash_graphql_client-0.12.12-py3-none-any.whl

.PHONY: test demo torture bench package clean venv schema

$(PY): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(PY)

venv: $(PY)

# The Stash emulator serves Stash's real schema, read out of this wheel (never imported: it wants Python >= 3.12).
$(SCHEMA_WHEEL): | $(PY)
	$(PY) -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
		--python-version 3.12 stash-graphql-client==0.12.12 -d .cache/stash-schema

schema: $(SCHEMA_WHEEL)

test: $(PY) $(SCHEMA_WHEEL)
	$(PY) -m pytest -q

torture: $(PY) $(SCHEMA_WHEEL)
	PLEXSYNC_TORTURE=1 $(PY) -m pytest -q -m torture

demo: $(PY) $(SCHEMA_WHEEL)
	$(PY) -m tests.demo

bench: $(PY) $(SCHEMA_WHEEL)
	$(PY) -m bench

package: $(PY)
	$(PY) -m tests.package dist

clean:
	rm -rf dist .pytest_cache
