# gridmap: `make demo` serves the Taipei demo city on http://127.0.0.1:8000; `make test` runs the suite.
# Both install what is missing, start the private PostGIS cluster under .gridmap/ (unless
# GRIDMAP_DATABASE_URL names an existing PostGIS) and run the migrations.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
GRIDMAP := $(BIN)/gridmap

.PHONY: demo setup test db-up db-down system-deps clean

demo: setup
	$(GRIDMAP) serve

setup: db-up
	$(GRIDMAP) demo load --if-empty

test: db-up
	$(BIN)/pytest

db-up: $(VENV)/.installed
	$(GRIDMAP) db up
	$(GRIDMAP) db migrate

db-down: $(VENV)/.installed
	$(GRIDMAP) db down

system-deps:
	@PYTHON=$(PYTHON) scripts/system-deps.sh

$(VENV)/.installed: pyproject.toml | system-deps
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

clean: db-down
	rm -rf $(VENV) .gridmap
