# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).
"""Filters of playbooks/verify.yml (role cluster_verify): what to read, the smoke Jobs, and the checks.

The logic is in module_utils/verify.py. Documentation: the <filter name>.yml files next to this one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError, AnsibleUndefinedVariable

from ansible_collections.gpufleet.platform.plugins.module_utils import serving, tenancy, verify
from ansible_collections.gpufleet.platform.plugins.module_utils.plan_guard import plan_guard

_plan = plan_guard(("pools", "services"), AnsibleFilterError, AnsibleUndefinedVariable)


def verify_expected_objects(plan, kserve_runtime_name="gpufleet-vllm"):
    """Refs (apiVersion, kind, name, namespace) of the objects the collection creates for enabled services."""
    plan = _plan(plan)
    services = plan["services"]
    try:
        kueue = tenancy.kueue_objects(plan) if services.get("kueue", {}).get("enabled") else None
        volcano = tenancy.volcano_objects(plan) if services.get("volcano", {}).get("enabled") else None
    except tenancy.TenancyError as exc:
        raise AnsibleFilterError(str(exc))
    kserve = None
    if services.get("kserve", {}).get("enabled"):
        kserve = dict(serving.plan_models(services["kserve"]), runtime_name=kserve_runtime_name)
    return verify.expected_objects(plan, kueue, volcano, kserve)


def verify_smoke_jobs(plan, image=None, command=None, timeout_seconds=300, namespace=verify.SMOKE_NAMESPACE):
    """One GPU smoke Job definition per pool with nodes."""
    return verify.smoke_jobs(_plan(plan), image or None, command or ("nvidia-smi", "-L"), int(timeout_seconds),
                             namespace or verify.SMOKE_NAMESPACE)


def verify_journeys(plan, image=None, annotations=None):
    """The objects of the opt-in journey smoke (setup, workloads), or None when it has nothing to run."""
    if annotations is not None and not isinstance(annotations, dict):
        raise AnsibleFilterError("cluster_verify_journey_pod_annotations must be a mapping, got %s"
                                 % type(annotations).__name__)
    return verify.journeys(_plan(plan), image or None, annotations=annotations or None)


def verify_journeys_settled(observed, plan, journey=None):
    """True once every journey check (or only ``journey``'s) passes: what the wait loops wait for."""
    if journey not in (None, "quota-held", "gang-fit"):
        raise AnsibleFilterError("verify_journeys_settled: journey must be quota-held or gang-fit, got %r" % journey)
    return verify.journeys_settled(_plan(plan), observed, journey)


def verify_checks(observed, plan):
    """Report checks for what the cluster holds (observed) against the plan."""
    try:
        return verify.checks(_plan(plan), observed)
    except verify.VerifyError as exc:
        raise AnsibleFilterError(str(exc))


def verify_charts(plan):
    """The charts (name, namespace, ...) of the services the collection installs: their releases and Deployments."""
    plan = _plan(plan)
    return [chart for svc in verify.deployed_services(plan) for chart in plan["services"][svc].get("charts") or []]


class FilterModule(object):
    def filters(self):
        return {
            "verify_expected_objects": verify_expected_objects,
            "verify_smoke_jobs": verify_smoke_jobs,
            "verify_journeys": verify_journeys,
            "verify_journeys_settled": verify_journeys_settled,
            "verify_checks": verify_checks,
            "verify_charts": verify_charts,
        }
