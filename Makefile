# The README's two commands: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# torch: with CUDA the normal build; without, the CPU wheel (torch==2.13.0 lies on this machine kind's disk).
TORCH_CPU_SPEC ?= torch==2.13.0
TORCH_CUDA_SPEC ?= torch>=2.2

.PHONY: demo test install bench clean-venv

demo: $(VENV)/.installed
	$(BIN)/featureboard demo

test: $(VENV)/.installed
	$(BIN)/python -m pytest

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	  $(BIN)/python -m pip install --quiet "$(TORCH_CUDA_SPEC)"; \
	else \
	  $(BIN)/python -m pip install --quiet "$(TORCH_CPU_SPEC)"; \
	fi
	$(BIN)/python -m pip install --quiet -e '.[test,embed]'
	touch $@

bench: $(VENV)/.installed
	$(BIN)/python bench/precompute.py
	$(BIN)/python bench/serve.py

clean-venv:
	rm -rf $(VENV)
