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

export PYTHON VENV REBUILD

# CI (CI=true) keeps a JUnit report and pytest's exit status under $(ARTIFACTS)/.
ifneq ($(filter true 1 yes,$(CI)),)
IN_CI := 1
PYTEST_FLAGS := -ra --durations=15 --junitxml=$(ARTIFACTS)/junit.xml
else
IN_CI :=
PYTEST_FLAGS :=
endif

.PHONY: help run test system docker venv venv-test node-tools images clean

help: ## list the targets and variables
	@echo "Targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  make \1\t\2/' | expand -t 16
	@echo "Variables (make VAR=value ...):"
	@echo "  CONFIG=$(CONFIG)  SETTINGS=$(SETTINGS)  (make run)"
	@echo "  PYTEST_ARGS=...  extra pytest arguments, e.g. PYTEST_ARGS='tests/common -q' (make test)"
	@echo "  IMAGES=...  images to build, by short name or tag (make images; default all)"
	@echo "  REBUILD=1  build the images even when present (make images)"
	@echo "  PYTHON=$(PYTHON)  VENV=$(VENV)"

run: system docker venv images ## validate mcp.config.json and settings.conf, print the plan
	@echo "==> mcp-orchestrator validate --config $(CONFIG) --settings $(SETTINGS)"
	@rc=0; \
	"$(VENV)/bin/mcp-orchestrator" validate --config "$(CONFIG)" --settings "$(SETTINGS)" || rc=$$?; \
	echo "==> mcp-orchestrator validate --json --config $(CONFIG) --settings $(SETTINGS)"; \
	"$(VENV)/bin/mcp-orchestrator" validate --json --config "$(CONFIG)" --settings "$(SETTINGS)" || rc=$$?; \
	exit $$rc

test: system docker venv-test node-tools images ## install what is missing, build the images, run pytest
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

node-tools: system ## install the MCP Inspector CLI (a real client for the tests) into .cache/node
	@scripts/ensure-node-tools.sh

images: docker ## build the local images that are missing (no registry needed)
	@scripts/build-images.sh $(IMAGES)

clean: ## remove .venv, caches and artifacts (never the configuration)
	@echo "==> removing the virtual environment, caches and artifacts"
	@if [ -f "$(VENV)/pyvenv.cfg" ]; then rm -rf "$(VENV)"; fi
	@rm -rf .cache .pytest_cache "$(ARTIFACTS)" *.egg-info build
	@find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
