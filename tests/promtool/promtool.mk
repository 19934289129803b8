# promtool, built from its Go module at a pinned Prometheus release, for the monitoring role's rule
# unit tests (tests/unit/monitoring). Included by the top-level Makefile; `make units` builds it first.
#
#   make promtool      build (idempotent) into $(PROMTOOL_CACHE)/prometheus-$(PROMTOOL_VERSION)/promtool
#
# 3.14.0 is the Prometheus image kube-prometheus-stack 88.5.3 ships (values.yaml
# prometheus.prometheusSpec.image.tag v3.14.0); its Go module version is v0.314.0.
PROMTOOL_VERSION ?= 3.14.0
PROMTOOL_CACHE ?= $(or $(GPUFLEET_TOOLS_CACHE),$(HOME)/.cache/gpufleet/tools)
PROMTOOL := $(PROMTOOL_CACHE)/prometheus-$(PROMTOOL_VERSION)/promtool
export PROMTOOL
export PROMTOOL_VERSION
export GPUFLEET_TOOLS_CACHE := $(PROMTOOL_CACHE)

.PHONY: promtool
promtool: ## Build promtool from its Go module (pinned, cached; for the alert rule tests)
	bash tests/promtool/build.sh

TEST_PREREQS += promtool

# The Prometheus server, same release and caches, for tests/integration/test_usage_report.py (a real Prometheus on
# 127.0.0.1 over backfilled blocks). About 160 s on 2 cores after promtool (shared module and build caches).
PROMETHEUS := $(PROMTOOL_CACHE)/prometheus-$(PROMTOOL_VERSION)/prometheus
export PROMETHEUS

.PHONY: prometheus
prometheus: promtool ## Build the Prometheus server from its Go module (pinned, cached; for the usage report test)
	bash tests/promtool/build.sh prometheus

INTEGRATION_PREREQS += prometheus
