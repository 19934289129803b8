# Kubespray: parse the playbooks that import it (cluster, scale, upgrade, remove_node) against the real collection.
# Included by the top-level Makefile. See docs/operations/kubespray-check.md.
#
#   make kubespray-check                          collection from .build/collections, else git (when reachable), else SKIPPED
#   make kubespray-check KUBESPRAY_SRC=~/kubespray a local Kubespray checkout (at the pinned tag), installed first
#
# Part of `make test` (EXTRA_TEST_TARGETS): where Kubespray cannot be had (CI here cannot reach GitHub) it prints
# SKIPPED with the reason and succeeds; with a checkout or network it parses the four playbooks for real.
KUBESPRAY_SRC ?=
KUBESPRAY_CHECK_CONFIG ?= inventories/example/config.yml

.PHONY: kubespray-check
kubespray-check: venv ## Install Kubespray (KUBESPRAY_SRC=checkout, or git when reachable), syntax-check + list-tasks cluster/scale/upgrade/remove_node
	KUBESPRAY_SRC="$(KUBESPRAY_SRC)" KUBESPRAY_CHECK_CONFIG="$(KUBESPRAY_CHECK_CONFIG)" COLLECTIONS="$(COLLECTIONS)" \
	  BIN="$(BIN)" bash tools/kubespray_check.sh

EXTRA_TEST_TARGETS += kubespray-check
