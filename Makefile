# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8501

.PHONY: run test lint bench clean

# (Re)install whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/streamlit run app.py --server.address $(HOST) --server.port $(PORT) \
		--server.headless true --browser.gatherUsageStats false --server.fileWatcherType none

lint: $(STAMP)
	$(BIN)/ruff check kb tests app.py ui benchmarks
	$(BIN)/ruff format --check kb tests app.py ui benchmarks
	$(BIN)/mypy kb
	$(BIN)/kb lint

# pytest exits 5 when it collects no test: that is not a failure of the code.
test: lint
	$(BIN)/python -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

bench: $(STAMP)
	$(BIN)/python benchmarks/evaluate.py
	$(BIN)/python benchmarks/repair.py
	$(BIN)/python benchmarks/review.py
	$(BIN)/python benchmarks/chat.py
	$(BIN)/python benchmarks/screen.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
