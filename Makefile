# gaacnn: every target that needs the environment builds it first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PROFILE ?= default
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))

.PHONY: setup test lint data train gpu-continue paper-figures verify-cache lab clean-venv

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name gaacnn --display-name "Python (gaacnn)" > /dev/null
	$(PY) -c "from gaacnn import native; native.report()"
	touch $(STAMP)

# Two test processes of one thread each: the suite's 10-minute budget on a 2-core machine.
test: setup
	$(VENV)/bin/ruff check gaacnn tests benchmarks
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2

lint: setup
	$(VENV)/bin/ruff check gaacnn tests benchmarks

data: setup
	$(PY) -m gaacnn data

# PROFILE=quick (the default): grow both trunks (GAACNN small, the control) by MINUTES each, then one
#   cooldown per shipped lambda from where each trunk stands, ship them (gaacnn/trunks.py, LADDERS) and
#   store the trunks for git; resumable: run it again;
# PROFILE=trunk: only grow both trunks by MINUTES and store them;
# PROFILE=paper: the authors' presets, lambdas and schedule (GPU).
# glibc's malloc told to keep its memory: 13-19 % off a CPU training step here (issue 20).
MINUTES ?= 60
TRAIN_ENV := MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296
train: setup
	if [ "$(PROFILE)" = "paper" ]; then $(PY) -m gaacnn.profiles train --profile paper && \
		$(PY) -m gaacnn.release --paper; exit $$?; fi
	if [ "$(PROFILE)" = "trunk" ]; then $(TRAIN_ENV) $(PY) -m gaacnn.trunks grow --minutes $(MINUTES) && \
		$(PY) -m gaacnn.trunks store; exit $$?; fi
	$(TRAIN_ENV) $(PY) -m gaacnn.profiles train --profile quick --minutes $(MINUTES)
	$(PY) -m gaacnn.trunks store

# On a GPU machine with this environment: continue the GAACNN trunk for GPU_MINUTES at the GPU's batch,
# then store it (trunks/). A machine without network or with a 64 MiB tree limit: scripts/gpu_bundle.sh
# here, scripts/gpu_continue.sh there.
GPU_MINUTES ?= 8
gpu-continue: setup
	$(PY) -m gaacnn.trunks grow gaacnn-small-mse-0.013 --gpu --minutes $(GPU_MINUTES)
	$(PY) -m gaacnn.trunks store gaacnn-small-mse-0.013

# PROFILE=paper trains the authors' presets first (GPU, resumable) and ships the finished runs.
paper-figures: setup data
	if [ "$(PROFILE)" = "paper" ]; then $(PY) -m gaacnn.profiles train --profile paper && \
		$(PY) -m gaacnn.release --paper; fi
	$(PY) -m gaacnn.pipeline --profile $(PROFILE)

# Measure a random sample of cached evaluation rows again; fails on any difference (SAMPLE rows).
SAMPLE ?= 8
verify-cache: setup data
	$(PY) -m gaacnn.evaluate verify --sample $(SAMPLE)

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

clean-venv:
	rm -rf $(VENV)
