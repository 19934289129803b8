# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).
"""Filters of the scheduling layer (roles kueue and volcano): teams and quotas from the plan as Kueue and
Volcano objects, the controllers' configuration, and what declarative removal deletes.

The logic is in module_utils/tenancy.py. Documentation: the <filter name>.yml files next to this one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError, AnsibleUndefinedVariable

from ansible_collections.gpufleet.platform.plugins.module_utils import tenancy
from ansible_collections.gpufleet.platform.plugins.module_utils.plan_guard import plan_guard

_plan = plan_guard(("pools", "cluster"), AnsibleFilterError, AnsibleUndefinedVariable)


def _call(func, *args):
    try:
        return func(*args)
    except tenancy.TenancyError as exc:
        raise AnsibleFilterError(str(exc))


def kueue_objects(plan, default_cpu="1000", default_memory="4Ti"):
    """{namespaces, cluster, namespaced}: every Kueue object the plan implies, in apply order."""
    return _call(tenancy.kueue_objects, _plan(plan), str(default_cpu), str(default_memory))


def kueue_configuration(plan, wait_timeout="5m", block_admission=False):
    """The Kueue controller Configuration (config.kueue.x-k8s.io/v1beta2) as a dict."""
    return _call(tenancy.kueue_configuration, _plan(plan), str(wait_timeout), bool(block_admission))


def volcano_objects(plan):
    """{namespaces, cluster}: team namespaces and one Volcano Queue per team (parents first)."""
    return _call(tenancy.volcano_objects, _plan(plan))


def volcano_scheduler_config(plan):
    """volcano-scheduler.conf (actions and plugin tiers) as a dict."""
    return _call(tenancy.volcano_scheduler_config, _plan(plan))


def quota_overruns(plan):
    """Messages for quotas above pool capacity (empty when within capacity or over-commit is allowed)."""
    try:
        tenancy.check_capacity(_plan(plan))
    except tenancy.TenancyError as exc:
        return [str(exc)]
    return []


def pool_node_labels(plan):
    """Node patches that put the pool label (what ResourceFlavors select on) on every pool node."""
    plan = _plan(plan)
    return [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": node, "labels": {tenancy.POOL_LABEL: name}}}
            for name, pool in sorted(plan["pools"].items()) for node in pool.get("nodes") or []]


def stale_objects(existing, desired):
    """What the cluster holds (k8s_info resources selected by the managed-by labels) that desired lacks."""
    if not isinstance(existing, list) or not isinstance(desired, list):
        raise AnsibleFilterError("stale_objects expects two lists of objects")
    return tenancy.stale_objects(existing, desired)


def tenancy_selector(plan, component):
    """Label selector for the objects of component (kueue, volcano, tenancy) of this cluster."""
    return tenancy.selector(_plan(plan), component)


def pool_tolerations(pool):
    """A toleration for every taint of a pool (gpufleet_plan.pools.<name>)."""
    if not isinstance(pool, dict):
        raise AnsibleFilterError("pool_tolerations expects a pool of gpufleet_plan.pools, got %r" % (type(pool).__name__,))
    return tenancy.pool_tolerations(pool)


class FilterModule(object):
    def filters(self):
        return {
            "kueue_objects": kueue_objects,
            "kueue_configuration": kueue_configuration,
            "volcano_objects": volcano_objects,
            "volcano_scheduler_config": volcano_scheduler_config,
            "quota_overruns": quota_overruns,
            "pool_node_labels": pool_node_labels,
            "stale_objects": stale_objects,
            "tenancy_selector": tenancy_selector,
            "pool_tolerations": pool_tolerations,
        }
