# MCP Docker Orchestrator: the two everyday commands are `make run` and `make test`.
# Every step installs only what is missing, so a second run starts within seconds.
# The steps themselves live in scripts/ and can be run on their own.

SHELL := /bin/bash
.DEFAULT_GOAL := help
# The steps share the Docker engine and the virtual environment: one at a time.
.NOTPARALLEL:

PYTHON      ?= python3
VENV        ?= $(CURDIR)/.venv
CONFIG      ?= mcp.config.json
SETTINGS    ?= settings.conf
PYTEST_ARGS ?=
IMAGES      ?=
REBUILD     ?= 0
ARTIFACTS   ?= artifacts
RUN_ARGS    ?=
# The images the example mcp.config.json uses (make run builds only these).
RUN_IMAGES  ?= busybox time

export PYTHON VENV REBUILD

# CI (CI=true) keeps a JUnit report and pytest's exit status under $(ARTIFACTS)/.
ifneq ($(filter true 1 yes,$(CI)),)
IN_CI := 1
PYTEST_FLAGS := -ra --durations=15 --junitxml=$(ARTIFACTS)/junit.xml
else
IN_CI :=
PYTEST_FLAGS :=
endif

.PHONY: help run test system docker venv venv-test node-tools litellm browser images clean install uninstall

help: ## list the targets and variables
	@echo "Targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  make \1\t\2/' | expand -t 16
	@echo "Variables (make VAR=value ...):"
	@echo "  CONFIG=$(CONFIG)  SETTINGS=$(SETTINGS)  (make run)"
	@echo "  RUN_ARGS=...  extra flags for make run, e.g. RUN_ARGS=--one-shot or --no-dashboard"
	@echo "  PYTEST_ARGS=...  extra pytest arguments, e.g. PYTEST_ARGS='tests/common -q' (make test)"
	@echo "  IMAGES=...  images to build, by short name or tag (make images; default all)"
	@echo "  REBUILD=1  build the images even when present (make images)"
	@echo "  PYTHON=$(PYTHON)  VENV=$(VENV)"

run: system docker venv ## run the whole orchestrator on mcp.config.json and settings.conf (Ctrl-C stops it)
	@scripts/build-images.sh $(RUN_IMAGES)
	@echo "==> mcp-orchestrator validate --config $(CONFIG) --settings $(SETTINGS)"
	@"$(VENV)/bin/mcp-orchestrator" validate --config "$(CONFIG)" --settings "$(SETTINGS)" || \
		echo "==> the problems above are reported by the scheduler too; valid servers run anyway"
	@echo "==> mcp-orchestrator run --config $(CONFIG) --settings $(SETTINGS) $(RUN_ARGS)"
	@echo "    (in another terminal: $(VENV)/bin/mcp-orchestrator status --settings $(SETTINGS))"
	@exec "$(VENV)/bin/mcp-orchestrator" run --config "$(CONFIG)" --settings "$(SETTINGS)" $(RUN_ARGS)

test: system docker venv-test node-tools litellm browser images ## install what is missing, build the images, run pytest
	@echo "==> pytest $(strip $(PYTEST_FLAGS) $(PYTEST_ARGS))"
	@if [ -n "$(IN_CI)" ]; then mkdir -p "$(ARTIFACTS)"; rm -f "$(ARTIFACTS)/pytest-exit-status"; fi; \
	rc=0; "$(VENV)/bin/python" -m pytest $(PYTEST_FLAGS) $(PYTEST_ARGS) || rc=$$?; \
	if [ -n "$(IN_CI)" ]; then echo "$$rc" >"$(ARTIFACTS)/pytest-exit-status"; fi; \
	if [ $$rc -eq 5 ]; then echo "make test: FAILED: pytest collected no tests (exit status 5)"; fi; \
	exit $$rc

system: ## install the missing Debian packages (docker.io, busybox-static, debootstrap, ...)
	@scripts/install-system.sh

docker: system ## start a Docker engine when none answers
	@scripts/ensure-docker.sh

venv: system ## create .venv, install requirements.txt and the project (pip -e)
	@scripts/ensure-venv.sh

venv-test: system
	@scripts/ensure-venv.sh --test

node-tools: system ## install the MCP Inspector CLI, the MCP conformance suite and Node.js 22 into .cache/node
	@scripts/ensure-node-tools.sh

litellm: system ## install LiteLLM Proxy into .cache/litellm (a real gateway in front of the bridges, for the tests)
	@scripts/ensure-litellm.sh

browser: system ## install headless Chromium and chromedriver from Debian (dashboard browser test)
	@scripts/ensure-browser.sh

images: docker ## build the local images that are missing (no registry needed)
	@scripts/build-images.sh $(IMAGES)

install: ## install the four systemd services under /opt/mcp-orchestrator (sudo make install)
	@scripts/install.sh

uninstall: ## remove the services and /opt/mcp-orchestrator, keep /etc/mcp-orchestrator
	@scripts/uninstall.sh

clean: ## remove .venv, caches and artifacts (never the configuration)
	@echo "==> removing the virtual environment, caches and artifacts"
	@if [ -f "$(VENV)/pyvenv.cfg" ]; then rm -rf "$(VENV)"; fi
	@rm -rf .cache .pytest_cache "$(ARTIFACTS)" *.egg-info build
	@find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

# Benchmarks (issue 8): this project's bridge against mcp-proxy (npm and PyPI) and
# supergateway, and the control plane. BENCH_QUICK=1 for a fast pass;
# BENCH_ONLY=bridge,sessions,healing,alb,scale (or 1-5) for some of them. Tables on the
# terminal, JSON and Markdown in bench-results/.
BENCH_QUICK ?=
BENCH_ONLY  ?=
BENCH_ARGS  ?=
.PHONY: bench
bench: system docker venv ## run the benchmarks (BENCH_QUICK=1: a fast pass); results in bench-results/
	@scripts/build-images.sh busybox time
	@scripts/ensure-bench-tools.sh
	@echo "==> python -m benchmarks $(BENCH_ARGS)$(if $(BENCH_QUICK), (BENCH_QUICK=$(BENCH_QUICK)))"
	@BENCH_QUICK="$(BENCH_QUICK)" BENCH_ONLY="$(BENCH_ONLY)" "$(VENV)/bin/python" -m benchmarks $(BENCH_ARGS)
