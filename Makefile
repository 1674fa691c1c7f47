# `make serve` and `make test` are all a fresh machine needs (Python 3.10+ and make).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INDEX ?= $(or $(QA_INDEX),index/default)
# The CPU build of PyTorch must be installed before anything that depends on torch,
# or pip resolves a CUDA build of several GB.
TORCH ?= torch==2.13.0

ENGINE ?= $(or $(QA_ENGINE),embedded)

.PHONY: serve test install browser check seed-milvus

# With QA_ENGINE=milvus the seeds are ingested into Milvus (Lite, unless QA_MILVUS_URI
# names a server) before serving; unchanged documents are not embedded again.
serve: $(if $(filter milvus,$(ENGINE)),seed-milvus,$(INDEX)/documents.sqlite)
	$(BIN)/qa serve --index $(INDEX)

seed-milvus: $(VENV)/engines
	$(BIN)/qa ingest seeds --index $(INDEX)

# The tests run against both engines and Ray, so they install both extras.
test: $(VENV)/engines browser check
	$(BIN)/python -m pytest

# Static checks over the package: lint (ruff) and types (mypy), as pyproject.toml configures them.
check: $(VENV)/installed
	$(BIN)/ruff check qa
	$(BIN)/mypy

# The browser tests drive Debian's Chromium through its ChromeDriver. Without root
# (or sudo) they cannot be installed here, and the tests skip, except under CI.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { $(SUDO) apt-get install -y -q chromium chromium-driver >/dev/null || \
	    { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q chromium chromium-driver >/dev/null; } || \
	    echo "could not install chromium and chromium-driver: the browser tests will be skipped"; }

install: $(VENV)/installed

$(VENV)/installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The optional engines: Milvus (Lite) and Ray.
$(VENV)/engines: $(VENV)/installed
	$(BIN)/pip install --quiet -e '.[test,milvus,ray]'
	touch $@

# Builds the sample index once, and again whenever a file in seeds/ changes.
$(INDEX)/documents.sqlite: $(wildcard seeds/*) | $(VENV)/installed
	$(BIN)/qa ingest seeds --index $(INDEX)
	touch $@
