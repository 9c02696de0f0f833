# customs-ledger: the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
export LEDGER_DATABASE_URL ?= sqlite:///./var/ledger.sqlite3

.PHONY: run test lint unit bench soak venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	@mkdir -p var
	$(BIN)/customs-ledger serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check domain ledger projections api tests bench
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint unit

bench: $(STAMP)
	$(BIN)/python -m bench.run

# The model-based tests at length (the movements state machine: 5000 random examples per store).
soak: $(STAMP)
	LEDGER_SOAK_EXAMPLES=5000 $(BIN)/python -m pytest -q tests/model

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis build *.egg-info
