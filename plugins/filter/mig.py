# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).
"""Filters that turn a MIG layout into a mig-parted config, Kubernetes resources or placements.

Documentation: the mig_parted_config.yml, mig_resources.yml, mig_placements.yml and mig_plan.yml files next to this one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.gpufleet.platform.plugins.module_utils.mig import MigLayoutError, merge_plans, plan_layout


def _is_plan(value):
    return isinstance(value, dict) and "mig_parted" in value and "model" in value and "layout" in value


def _plan(layout, model=None, gpu_count=1, driver_version=None, config_name=None):
    if _is_plan(layout):
        return layout
    if model is None:
        raise AnsibleFilterError(
            "A MIG layout filter needs the GPU model, e.g. layout | gpufleet.platform.mig_parted_config('a100-sxm4-80gb')."
        )
    try:
        return plan_layout(model, layout, int(gpu_count), driver_version, config_name=config_name)
    except MigLayoutError as e:
        raise AnsibleFilterError(str(e))


def mig_plan(layout, model=None, gpu_count=1, driver_version=None, config_name=None):
    """The full plan, as gpufleet.platform.mig_layout returns it."""
    return _plan(layout, model, gpu_count, driver_version, config_name)


def mig_parted_config(layout, model=None, gpu_count=1, driver_version=None, config_name=None):
    """mig-parted document for a layout, a plan, or a list of plans (merged, device-filtered)."""
    if isinstance(layout, list) and layout and all(_is_plan(p) for p in layout):
        try:
            return merge_plans(layout, config_name)["mig_parted"]
        except MigLayoutError as e:
            raise AnsibleFilterError(str(e))
    plan = _plan(layout, model, gpu_count, driver_version, config_name)
    if config_name and config_name != plan["config_name"]:
        configs = plan["mig_parted"]["mig-configs"]
        return {"version": plan["mig_parted"]["version"], "mig-configs": {config_name: list(configs.values())[0]}}
    return plan["mig_parted"]


def mig_resources(layout, model=None, gpu_count=1, strategy="mixed", driver_version=None):
    """Kubernetes resources a layout yields under the device plugin's mixed or single MIG strategy."""
    if strategy not in ("mixed", "single", "both"):
        raise AnsibleFilterError("mig_resources strategy must be mixed, single or both, got %r." % (strategy,))
    if isinstance(layout, list) and layout and all(_is_plan(p) for p in layout):
        res = merge_plans(layout)["resources"]
    else:
        res = _plan(layout, model, gpu_count, driver_version)["resources"]
    return res if strategy == "both" else res[strategy]


def mig_placements(layout, model=None, gpu_count=1, driver_version=None):
    """Per GPU index, the GPU instances as profile@start."""
    return _plan(layout, model, gpu_count, driver_version)["placements"]


class FilterModule(object):
    def filters(self):
        return {
            "mig_parted_config": mig_parted_config,
            "mig_resources": mig_resources,
            "mig_placements": mig_placements,
            "mig_plan": mig_plan,
        }
