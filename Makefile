# aicc: every target sets up .venv itself (Python 3.11+).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench lint venv clean

$(STAMP): pyproject.toml scripts/venv.sh
	PYTHON=$(PYTHON) bash scripts/venv.sh
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/aicc serve --demo

test: $(STAMP)
	bash scripts/test.sh

bench: $(STAMP)
	bash scripts/bench.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
