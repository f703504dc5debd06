# rlops: every target installs what it needs first, so a fresh clone needs only `make demo` or `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
TOOLS := .tools
PY := $(VENV)/bin/python
RLOPS := $(VENV)/bin/rlops
PIP_FLAGS := --quiet --disable-pip-version-check
# Ray's token auth would make the local dashboard answer 401; a laptop session needs none.
export RAY_AUTH_MODE ?= disabled
export PYTHONHASHSEED := 0

.PHONY: help demo test setup debian lock clean lint typecheck memory pytest \
	bench-env bench-agents bench-quality bench-backtest bench-tune bench-serve

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# ---- The README's two commands ------------------------------------------------------------------------------

demo: setup  ## the main job, locally: validate -> tune -> retrain -> backtest -> report -> record
	$(RLOPS) pipeline run

test: setup lint typecheck memory pytest  ## lint, type-check, memory bank and the whole test suite

# ---- Setup: virtual environments and Debian packages, rebuilt only when their inputs change -----------------

setup: $(VENV)/.installed $(TOOLS)/.installed debian  ## build .venv (rlops) and .tools (scanners), reusing them when up to date

# Debian packages the suite runs, as command:package (installed once, as root, else through sudo): Chromium opens
# the HTML reports, bubblewrap sandboxes the patch bot's validations, Prometheus judges the canary analysis, and
# shellcheck lets actionlint check the workflows' run: blocks.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBIAN_TOOLS := chromium:chromium bwrap:bubblewrap prometheus:prometheus shellcheck:shellcheck
debian:
	missing=""; for tool in $(DEBIAN_TOOLS); do command -v "$${tool%%:*}" >/dev/null || missing="$$missing $${tool#*:}"; done; \
	if [ -n "$$missing" ]; then $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; fi

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) --upgrade "pip==26.3" "setuptools==84.2.1" "wheel==0.48.0"
	$(PY) -m pip install $(PIP_FLAGS) -c constraints.txt -e ".[all]"
	touch $@

# Checkov pins boto3/networkx/packaging differently from the ML stack, so scanners get their own venv.
$(TOOLS)/.installed: constraints-tools.txt
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install $(PIP_FLAGS) -r constraints-tools.txt
	touch $@

lock:  ## re-pin constraints.txt from what .venv holds (run after changing dependencies)
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache

# ---- Checks: the pieces of `make test` -----------------------------------------------------------------------

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

memory: setup
	$(RLOPS) memory validate

pytest: setup
	$(VENV)/bin/pytest -q

# ---- Benchmarks: each against a named peer measured in the same run -----------------------------------------

bench-env: setup  ## environment throughput against gym-anytrading
	$(PY) -m pip install $(PIP_FLAGS) -c constraints.txt gym-anytrading
	$(PY) benchmarks/env_throughput.py

bench-agents: setup  ## PPO/A3C throughput and returns against Stable-Baselines3 PPO (CartPole, trading env)
	$(PY) benchmarks/agents_vs_sb3.py

bench-quality: setup  ## learning quality across seeds against Stable-Baselines3 PPO: IQM and bootstrap intervals
	PYTHONPATH=. $(PY) benchmarks/agents_quality.py

bench-backtest: setup  ## `rlops backtest batch` swept against --per-cell, sweep throughput, metrics against quantstats
	PYTHONPATH=. $(PY) benchmarks/backtest_batch.py
	PYTHONPATH=. $(PY) benchmarks/backtest_throughput.py

bench-tune: setup  ## Ray Tune overhead against in-process trials, and ASHA against a full-budget search
	PYTHONPATH=. $(PY) benchmarks/tune_overhead.py

bench-serve: setup  ## inference service on loopback against Ray Serve: p99 at 500 req/s and saturation, batches of 1 and 64
	PYTHONPATH=. $(PY) benchmarks/serve_load.py
