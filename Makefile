# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# A default native llama.cpp build crashed at the first decode on our 2-core machines; these flags run.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

.PHONY: demo test lab report bench lint clean

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet -e '.[local,scale,test]'
	touch $@

demo: $(BIN)/.installed  ## execute the quickstart notebook on the embedded model -> reports/01_quickstart.html
	$(BIN)/python -m workbench.views.report notebooks/01_quickstart.ipynb

report: $(BIN)/.installed  ## execute every notebook headlessly -> self-contained HTML in reports/
	$(BIN)/python -m workbench.views.report

test: $(BIN)/.installed  ## the whole test suite
	$(BIN)/python -m pytest

lab: $(BIN)/.installed  ## JupyterLab on notebooks/
	$(BIN)/jupyter lab notebooks/

bench: $(BIN)/.installed  ## benchmarks that print ratios measured side by side
	$(BIN)/python bench/client_overhead.py
	$(BIN)/python bench/dedup.py
	$(BIN)/python bench/explore.py

lint: $(BIN)/.installed
	$(BIN)/ruff check workbench tests bench

clean:
	rm -rf $(VENV) data/cache data/runs data/logs reports
