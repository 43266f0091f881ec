# gridmap: `make demo` serves the Taipei demo city on http://127.0.0.1:8000; `make test` runs the suite.
# Both install what is missing (system packages, the venv, the front-end assets from the npm
# registry into node_modules/), start the private PostGIS cluster under .gridmap/ (unless
# GRIDMAP_DATABASE_URL names an existing PostGIS) and run the migrations.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
GRIDMAP := $(BIN)/gridmap
ASSETS := node_modules/.package-lock.json

.PHONY: demo setup test assets db-up db-down system-deps clean

demo: setup
	$(GRIDMAP) serve

setup: db-up $(ASSETS)
	$(GRIDMAP) demo load --if-empty
	$(GRIDMAP) demo users
	$(GRIDMAP) demo history --if-empty

test: db-up $(ASSETS)
	$(BIN)/pytest

assets: $(ASSETS)

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
	$(BIN)/python -m pip install --quiet -e '.[maps,test,scale]'
	@touch $@

# Exact versions from package-lock.json; only the npm registry is contacted.
$(ASSETS): package.json package-lock.json | system-deps
	npm ci --no-audit --no-fund
	@touch $@

clean: db-down
	rm -rf $(VENV) .gridmap node_modules
