# gridmap: `make demo` serves the Taipei demo city on http://127.0.0.1:8000; `make test` runs the suite.
# Both install what is missing (system packages, the venv, the front-end assets from the npm
# registry into node_modules/), start the private PostGIS cluster under .gridmap/ (unless
# GRIDMAP_DATABASE_URL names an existing PostGIS) and run the migrations.

# The venv's interpreter: the distribution's /usr/bin/python3 where it is 3.11 or newer, else the python3 on
# PATH; PYTHON=... chooses another. Debian and Ubuntu build theirs with profile-guided and link-time
# optimisation; a default pyenv build has neither (measured: 10 % fewer instructions a served report).
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell /usr/bin/python3 -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null \
                  && echo /usr/bin/python3 || echo python3)
endif
VENV   := .venv
BIN    := $(VENV)/bin
GRIDMAP := $(BIN)/gridmap
ASSETS := node_modules/.package-lock.json

.PHONY: demo setup test assets db-up db-down system-deps clean FORCE

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

$(VENV)/.installed: pyproject.toml $(VENV)/.interpreter | system-deps
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[maps,test,scale]'
	@touch $@

# The interpreter the venv was made with; when PYTHON is another, the venv is made again with it.
$(VENV)/.interpreter: FORCE | system-deps
	@want=$$($(PYTHON) -c 'import os, sys; print(os.path.realpath(sys.executable))'); \
	if [ -d $(VENV) ] && [ "$$(sed -n 's/^executable = //p' $(VENV)/pyvenv.cfg 2>/dev/null)" != "$$want" ]; then \
		echo "Making $(VENV) again, with $$want"; rm -rf $(VENV); \
	fi; \
	mkdir -p $(VENV); [ "$$(cat $@ 2>/dev/null)" = "$$want" ] || echo "$$want" > $@

FORCE:

# Exact versions from package-lock.json; only the npm registry is contacted.
$(ASSETS): package.json package-lock.json | system-deps
	npm ci --no-audit --no-fund
	@touch $@

clean: db-down
	rm -rf $(VENV) .gridmap node_modules
