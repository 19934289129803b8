# gpufleet.platform developer and CI entry points. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config.example.yml
COLLECTIONS := $(CURDIR)/.build/collections
LINK := $(COLLECTIONS)/ansible_collections/gpufleet/platform
SANITY_ROOT := $(CURDIR)/.build/sanity/ansible_collections/gpufleet/platform
# Sanity covers the collection as shipped (galaxy.yml build_ignore) plus its unit tests; the lab,
# benchmarks, dev tools, integration suites, the lab's unit tests and examples/ (a team's workloads and their render
# script, run with the controller's Python) are not part of it (they are ruff-checked by `lint`).
SANITY_EXCLUDE := ^(lab|bench|tools|extensions|\.ci|tests/integration|tests/unit/lab|examples)/
PYTEST_ARGS ?=
# ansible-test's pip bootstrap (see tools/ansible_test_get_pip.py)
GET_PIP_CACHE := $(HOME)/.ansible/test/cache/get_pip_24_2.py
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PYTHONDONTWRITEBYTECODE := 1
export GPUFLEET_SHARED ?= $(abspath $(CURDIR)/../shared)

# Fragments add what their suites need: TEST_PREREQS (built before units/integration run), INTEGRATION_PREREQS
# (built before integration only) and
# EXTRA_TEST_TARGETS (more suites `make test` runs, e.g. molecule).
TEST_PREREQS :=
INTEGRATION_PREREQS :=
EXTRA_TEST_TARGETS :=
-include lab/lab.mk
-include extensions/molecule/molecule.mk
-include tests/promtool/promtool.mk
-include tools/kubespray.mk
-include tests/integration/mlflow/mlflow.mk

.PHONY: help
help: ## List targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-18s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

.PHONY: venv
venv: $(BIN)/.installed $(LINK) ## Python virtualenv with the pinned tooling

$(LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../../.. $@

.PHONY: validate
validate: venv ## Validate CONFIG (default config.example.yml); touches no host
	$(BIN)/ansible-playbook -i $(CONFIG) playbooks/validate.yml

.PHONY: schema docs
schema: venv ## Regenerate schemas/config.schema.json from the schema module
	$(BIN)/python tools/gen_docs.py schema

docs: venv ## Regenerate docs/config.md, docs/versions.md and the variable tables of roles/*/README.md
	$(BIN)/python tools/gen_docs.py docs

# ansible-lint also sees tests/lint/collections: a stand-in kubernetes_sigs.kubespray (after the real one, when
# installed) so that its syntax check resolves the Kubespray imports of playbooks/cluster, scale and upgrade.yml.
.PHONY: lint
lint: venv ## ansible-lint (production profile), yamllint, ruff, generated files up to date
	$(BIN)/python tools/gen_docs.py check
	$(BIN)/yamllint -s .
	$(BIN)/ruff check .
	$(BIN)/antsibull-changelog lint
	ANSIBLE_COLLECTIONS_PATH=$(COLLECTIONS):$(CURDIR)/tests/lint/collections $(BIN)/ansible-lint

.PHONY: sanity
sanity: venv ## ansible-test sanity with empty ignore files
	rm -rf $(dir $(SANITY_ROOT))
	mkdir -p $(HOME)/.ansible/test/cache
	test -f $(GET_PIP_CACHE) || cp tools/ansible_test_get_pip.py $(GET_PIP_CACHE)
	mkdir -p $(SANITY_ROOT)
	git ls-files -co --exclude-standard | grep -vE '$(SANITY_EXCLUDE)' | xargs -d '\n' cp --parents -t $(SANITY_ROOT)
	cd $(SANITY_ROOT) && git init -q && git add -A && \
	  $(CURDIR)/$(BIN)/ansible-test sanity --python $(shell $(BIN)/python -c 'import sys;print("%d.%d"%sys.version_info[:2])') \
	    --requirements --color no $(SANITY_ARGS)

# The matrix against ../shared/upstream/charts (name, version, appVersion; images rendered with default values);
# skips with a message where ../shared is absent. About 30 s on 2 cores, so `make test` runs it.
.PHONY: versions-check
versions-check: venv ## Version matrix vs the upstream charts in ../shared (metadata and rendered images); fails on drift
	PATH=$(LAB_CACHE)/v$(shell sed -n 's/^KUBE_VERSION=//p' lab/versions.env)/bin:$$PATH \
	  $(BIN)/python tools/versions_check.py --charts $(GPUFLEET_SHARED)/upstream/charts

.PHONY: units
units: venv $(TEST_PREREQS) ## Unit tests (pure logic, modules, config rules)
	$(BIN)/pytest tests/unit -q -p no:cacheprovider $(PYTEST_ARGS)

.PHONY: integration
integration: venv lab-build $(TEST_PREREQS) $(INTEGRATION_PREREQS) ## Integration tests (ansible-playbook runs; the lab)
	$(BIN)/pytest tests/integration -q -p no:cacheprovider $(PYTEST_ARGS)

.PHONY: example
example: venv ## Print example NAME for TEAM filled from CONFIG (ARGS: --pool, --gpus, --replicas, --profile); see examples/README.md
	@test -n "$(NAME)" -a -n "$(TEAM)" || { echo "usage: make example NAME=<example> TEAM=<team> [CONFIG=config.yml] [ARGS=...]" >&2; exit 2; }
	@$(BIN)/python examples/render.py "$(NAME)" --config "$(CONFIG)" --team "$(TEAM)" $(ARGS)

.PHONY: bench
bench: venv ## Benchmarks (figures, not pass/fail)
	for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b; done

.PHONY: test
test: lint sanity versions-check units integration $(EXTRA_TEST_TARGETS) ## Everything CI runs

.PHONY: clean
clean: ## Remove build outputs (keeps the venv and the lab cache)
	rm -rf .build/sanity .pytest_cache

