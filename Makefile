# The README's two commands: `make demo` and `make test`. Both build .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# torch: with CUDA the normal build; without, the CPU wheel (torch==2.13.0 lies on this machine kind's disk).
TORCH_CPU_SPEC ?= torch==2.13.0
TORCH_CUDA_SPEC ?= torch>=2.2

# The SAELens parity tier runs in a second venv: sae-lens and its dependencies stay out of .venv.
PARITY_VENV ?= .venv-parity
PARITY_BIN := $(PARITY_VENV)/bin

.PHONY: demo test install bench clean-venv parity

demo: $(VENV)/.installed
	$(BIN)/featureboard demo

test: $(VENV)/.installed $(PARITY_VENV)/.installed
	$(BIN)/python -m pytest -m "not parity"
	$(PARITY_BIN)/python -m pytest -m parity tests/ml/test_saelens_parity.py

parity: $(PARITY_VENV)/.installed
	$(PARITY_BIN)/python -m pytest -m parity tests/ml/test_saelens_parity.py -s

$(PARITY_VENV)/.installed: pyproject.toml
	test -x $(PARITY_BIN)/python || $(PYTHON) -m venv $(PARITY_VENV)
	$(PARITY_BIN)/python -m pip install --quiet --upgrade pip
	$(PARITY_BIN)/python -m pip install --quiet "$(TORCH_CPU_SPEC)"
	$(PARITY_BIN)/python -m pip install --quiet -e '.[parity]'
	touch $@

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
	rm -rf $(VENV) $(PARITY_VENV)
