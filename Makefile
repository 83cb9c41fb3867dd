# A thin Makefile: every target sets up .venv first (pinned, CPU torch 2.13.0), then does one thing.
# Quick start:  make lab   (open the course)   |   make test   (everything CI runs)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
READY  := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)
# Tests and grading never touch the network and never train a real model.
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 COURSE_PROFILE=smoke

.PHONY: setup lab test test-gpu release grade feedback bench clean

setup: $(READY)

$(READY): pyproject.toml
	@echo "Setting up $(VENV) (pinned packages, CPU torch 2.13.0; about two minutes the first time)..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q -e ".[local,dev]" > $(VENV)/install.log 2>&1 \
		|| { grep -v "is ignored: it is neither" $(VENV)/install.log | tail -40; echo "pip install failed (full log: $(VENV)/install.log)"; exit 1; }
	@touch $@
	@echo "Ready: $$($(BIN)/python -c 'import torch, transformers, peft; print("torch", torch.__version__, "| transformers", transformers.__version__, "| peft", peft.__version__)')"

# Containers often run as root, which JupyterLab refuses without --allow-root.
lab: setup
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) exercises

# Unit tests, every solution notebook executed with nbmake, the nbgrader round trip, quiz keys, API drift.
test: setup
	$(OFFLINE) $(BIN)/python -m pytest -m "not gpu" tests
	$(OFFLINE) $(BIN)/python -m pytest --nbmake --nbmake-timeout=600 solutions

# Needs a CUDA GPU: bitsandbytes 4-bit on CUDA, fp16/bf16 paths.
test-gpu: setup
	$(BIN)/python -m pytest -m gpu tests

release: setup
	$(BIN)/python -m utils.course release

grade: setup
	$(OFFLINE) $(BIN)/python -m utils.course grade

feedback: setup
	$(OFFLINE) $(BIN)/python -m utils.course feedback

bench: setup
	$(OFFLINE) $(BIN)/python -m utils.bench

clean:
	rm -rf solutions/*/outputs exercises/*/outputs autograded feedback gradebook.db grades.csv .pytest_cache bench-results
