# gpufleet lab: a real Kubernetes control plane on 127.0.0.1 with KWOK-simulated GPU nodes.
# Included by the top-level Makefile. See docs/lab.md.
#
#   make lab-build     build etcd, kube-apiserver/-controller-manager/-scheduler, kubectl, helm, kwok, and the
#                      controllers (Kueue, cert-manager, Volcano, KServe, slurm-operator, GPU Operator; cached)
#   make lab-up        start the lab from LAB_CONFIG (idempotent)
#   make lab-status    health, node counts, GPU capacity, simulator state
#   make lab-down      stop every lab process (no process left behind)
#   make lab           lab-up, then ansible-playbook -i LAB_CONFIG playbooks/site.yml, then a summary
#   make lab-clean     lab-down, then remove the run dir and stand-in charts (LAB_CLEAN_ALL=1: binaries too)
#   make lab-bench     bench/bench_lab.py (cold build only with LAB_BENCH_COLD=1)

VENV ?= .venv
LAB_PYTHON ?= $(VENV)/bin/python
LAB_CONFIG ?= inventories/lab/config.yml
LAB_CACHE ?= $(or $(GPUFLEET_LAB_CACHE),$(HOME)/.cache/gpufleet/lab)
export GPUFLEET_LAB_CACHE := $(LAB_CACHE)
LAB_APT_PACKAGES ?= ca-certificates git iproute2 util-linux mount
LAB_PY := $(LAB_PYTHON) lab/lab.py
LAB_BIN = $(LAB_CACHE)/v$(shell sed -n 's/^KUBE_VERSION=//p' lab/versions.env)/bin

.PHONY: lab-build lab-up lab-down lab-status lab lab-clean lab-charts lab-bench lab-deps

lab-deps: ## Lab: OS packages the build needs (apt, non-interactive; only when missing)
	@missing=""; for p in $(LAB_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "[lab] installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@command -v go >/dev/null || { echo "[lab] ERROR: Go >= 1.26 is required (https://go.dev/dl/)"; exit 1; }

lab-build: lab-deps ## Lab: build the pinned binaries and controllers (Go modules, ../shared sources) into $(LAB_CACHE) (idempotent)
	bash lab/build.sh

lab-up: ## Lab: start etcd, control plane, KWOK nodes from LAB_CONFIG, GPU simulator (idempotent)
	$(LAB_PY) up --config $(LAB_CONFIG)

lab-down: ## Lab: stop everything the lab started
	$(LAB_PY) down

lab-status: ## Lab: health, nodes, GPU capacity, simulator state
	$(LAB_PY) status

lab-charts: ## Lab: regenerate the STAND-IN charts into $(LAB_CACHE)/charts
	$(LAB_PY) charts

lab: venv lab-build lab-up ## Lab: build (cached), lab-up, then playbooks/site.yml against the lab, then a summary
	PATH=$(LAB_BIN):$$PATH ANSIBLE_CONFIG=$(CURDIR)/ansible.cfg $(VENV)/bin/ansible-playbook -i $(LAB_CONFIG) playbooks/site.yml
	$(LAB_PY) summary

lab-clean: ## Lab: lab-down, remove run dir and stand-in charts (LAB_CLEAN_ALL=1 also removes binaries)
	$(LAB_PY) clean $(if $(LAB_CLEAN_ALL),--all,)

lab-bench: ## Lab: benchmarks (warm lab-up 10 / 1,000 nodes, API server memory)
	$(LAB_PYTHON) bench/bench_lab.py
