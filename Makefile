# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8501

.PHONY: run test slow fuzz lint bench clean

# (Re)install whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/streamlit run app.py --server.address $(HOST) --server.port $(PORT) \
		--server.headless true --browser.gatherUsageStats false --server.fileWatcherType none

lint: $(STAMP)
	$(BIN)/ruff check kb tests app.py ui benchmarks
	$(BIN)/ruff format --check kb tests app.py ui benchmarks
	$(BIN)/mypy kb ui app.py
	$(BIN)/lint-imports
	$(BIN)/kb lint

# Both profiles run over every core (pytest-xdist: one process, so one pyDatalog state, per
# worker); tests that share one server or browser are kept on one worker by xdist_group.
# pytest exits 5 when it collects no test: not a failure of the code in the fast profile, but
# in the slow one it would mean CI's exhaustive checks silently ran nothing.
define pytest
$(BIN)/python -m pytest -n auto --dist loadgroup $(1); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no tests collected"; exit $(2); fi; exit $$rc
endef

# The fast profile, after every change: everything but the exhaustive checks (a few minutes).
test: lint
	$(call pytest,-m "not slow",0)

# The exhaustive checks (the mutation check over every constant, the 2,000-patient engine
# identity ...): minutes more; .ci/run runs them after `make test`.
slow: $(STAMP)
	$(call pytest,-m slow,1)

# The property and fuzz suites with more examples (FUZZ=ci, at most 15 minutes; .ci/run runs
# it too). `make test` runs the same suites bounded; `FUZZ=deep make fuzz` is the deep run
# by hand (see the README's Tests section).
fuzz: $(STAMP)
	FUZZ=$${FUZZ:-ci} $(call pytest,-m fuzz,1)

bench: $(STAMP)
	$(BIN)/python benchmarks/evaluate.py
	$(BIN)/python benchmarks/repair.py
	$(BIN)/python benchmarks/review.py
	$(BIN)/python benchmarks/chat.py
	$(BIN)/python benchmarks/screen.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
