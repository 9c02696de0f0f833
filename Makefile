# customs-ledger: the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
export LEDGER_DATABASE_URL ?= sqlite:///./var/ledger.sqlite3

.PHONY: run test lint unit bench soak venv clean lock audit messages

# The environment installs exactly the locked versions, each checked against its hash
# (requirements-dev.lock, written by `make lock` from pyproject.toml's bounds), then the
# project itself without dependencies.
$(STAMP): pyproject.toml requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	@mkdir -m 700 -p var
	$(BIN)/customs-ledger serve --host $(HOST) --port $(PORT)

# The zh-CN catalog (api/i18n.py): every message the code writes for a person (found by
# api/i18n_extract.py) into api/locale/messages.pot, then merged into the catalog, where a new
# one waits with an empty translation (tests/unit/test_i18n.py fails until it is written).
messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg --no-location --sort-output --omit-header \
	  --project customs-ledger -o api/locale/messages.pot domain ledger projections api
	$(BIN)/pybabel update -i api/locale/messages.pot -d api/locale -l zh_CN \
	  --no-fuzzy-matching --ignore-obsolete --omit-header

# ruff; the layers (import-linter); types (mypy: strict on domain/ and ledger/, then the whole
# package set); no function of complexity rank D or worse (radon) in domain/, ledger/, projections/.
lint: $(STAMP)
	$(BIN)/ruff check domain ledger projections api tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy --strict domain ledger
	$(BIN)/mypy domain ledger projections api
	@complex="$$($(BIN)/radon cc -n D domain ledger projections)"; \
	  if [ -n "$$complex" ]; then echo "radon: functions of rank D or worse:"; echo "$$complex"; exit 1; fi

unit: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint unit

bench: $(STAMP)
	$(BIN)/python -m bench.run

# The model-based tests at length (the movements state machine: 5000 random examples per store),
# then the crash soak on each store: 2000 writes from 16 clients while the server is SIGKILLed
# 5 times (docs/reliability.md). PostgreSQL: LEDGER_TEST_POSTGRES_URL, a schema made and dropped.
soak: $(STAMP)
	LEDGER_SOAK_EXAMPLES=5000 $(BIN)/python -m pytest -q tests/model
	$(BIN)/python -m tests.soak.crash --store sqlite
	$(BIN)/python -m tests.soak.crash --store postgres

# Re-resolve the lock from pyproject.toml (newest versions within its bounds, every hash).
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --universal \
	  --python-version 3.11 --quiet --custom-compile-command "make lock" -o requirements-dev.lock

# Known vulnerabilities of the locked versions (needs the vulnerability database: PyPI's).
audit: $(STAMP)
	$(BIN)/pip-audit --strict --require-hashes --disable-pip -r requirements-dev.lock

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis build *.egg-info
