#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: mig_layout
short_description: Validate and plan a MIG layout for an NVIDIA GPU model
version_added: 0.1.0
description:
  - Checks a requested MIG layout against the GPU model's profile table and placement rules and returns
    the placement, a mig-parted configuration document and the Kubernetes resources it yields.
  - Runs on the controller (no GPU needed) from a model name, or on a host from
    M(gpufleet.platform.gpu_facts) output, where the profiles that C(nvidia-smi mig -lgip) reports
    override the catalog.
  - "Checks, each with its own error: the model supports MIG; every profile exists for the model
    (suffixes C(+me), C(-me), C(+me.all), C(+gfx)); per-profile maximum counts; at most one media-engine
    profile; compute-slice and memory-slice budgets; an exact placement over the allowed start slots
    (larger profiles first); driver-version gates (R470 for C(+me) on Ampere, R525 for A100-40GB
    C(1g.10gb) and A30 C(2g.12gb+me), R510 for a 4g and a 3g profile together)."
  - When a layout does not fit, the error proposes the nearest layouts that do.
  - "Catalog keys: C(a100-sxm4-40gb), C(a100-pcie-40gb), C(a100-sxm4-80gb), C(a100-pcie-80gb),
    C(a800-pcie-40gb), C(a800-sxm4-80gb), C(a800-pcie-80gb), C(a30), C(h100-sxm5-80gb), C(h100-pcie-80gb),
    C(h800-pcie-80gb), C(h800-sxm5-80gb), C(h100-nvl-94gb), C(h800-nvl-94gb), C(h100-96gb), C(gh200-96gb),
    C(h20), C(pg506-96gb), C(gh200-144gb), C(h200-sxm5-141gb), C(h200-nvl-141gb), C(b200), C(gb200), C(b300),
    C(gb300), C(rtx-pro-6000-blackwell) (MIG-capable) and C(t4), C(v100-sxm2-16gb), C(v100-sxm2-32gb),
    C(v100-pcie-16gb), C(v100-pcie-32gb), C(v100s-pcie-32gb), C(a2), C(a10), C(a10g), C(a40), C(rtx-a6000),
    C(l4), C(l40), C(l40s), C(rtx-6000-ada) (no MIG)."
author:
  - gpufleet.platform maintainers (@gpufleet)
options:
  model:
    description:
      - The GPU model, as a catalog key (C(a100-sxm4-80gb)), a PCI device ID (C(0x20B2) or C(0x20B210DE)),
        or a product name (C(NVIDIA A100-SXM4-80GB), or the GPU feature discovery label form
        C(NVIDIA-A100-SXM4-80GB)).
      - One of O(model) and O(gpu_facts) is required. With both, O(model) picks the GPUs of that model
        from O(gpu_facts).
    type: str
  gpu_facts:
    description:
      - The C(gpufleet_gpu_facts) fact set by M(gpufleet.platform.gpu_facts).
      - Supplies the model, the GPU count, the driver version and the hardware's MIG profiles.
    type: dict
  layout:
    description:
      - A preset name (C(all-disabled), C(all-enabled), C(all-balanced), or C(all-<profile>) such as
        C(all-1g.10gb) or C(all-1g.10gb.me), at the profile's maximum count), as in the GPU Operator's
        mig-parted configs.
      - Or a C(profile -> count) map applied to every GPU of the node.
      - Or a list with one entry per GPU index, each a map, a preset name, or C(disabled).
    type: raw
    required: true
  gpu_count:
    description:
      - Number of GPUs of the model on the node. Defaults to the count in O(gpu_facts), else 1.
    type: int
  driver_version:
    description:
      - NVIDIA driver version (C(535.154.05) or C(R535)) for the driver-version gates.
      - Defaults to the driver in O(gpu_facts). Without it, the gates are not checked (a warning says so).
    type: str
  config_name:
    description:
      - Name of the config in the mig-parted document (the C(nvidia.com/mig.config) label value).
      - Defaults to the preset name, or C(custom-<hash of the layout>).
    type: str
  device_filter:
    description:
      - Add a C(device-filter) with the model's PCI device IDs to the mig-parted entries, so the config
        only touches GPUs of this model (for nodes that mix GPU models).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: The module only computes; it behaves the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
notes:
  - Never reports C(changed).
  - Placement start slots for Hopper and Blackwell parts are assumed identical to A100's (see C(assumed)
    in the result); on a host, C(nvidia-smi mig -lgip) from O(gpu_facts) overrides the profile set and counts.
seealso:
  - module: gpufleet.platform.gpu_facts
"""

EXAMPLES = r"""
- name: Validate a balanced layout for two A100 80GB GPUs on the controller
  gpufleet.platform.mig_layout:
    model: a100-sxm4-80gb
    layout: all-balanced
    gpu_count: 2
  delegate_to: localhost
  register: plan

- name: A custom layout, the same on every GPU
  gpufleet.platform.mig_layout:
    model: NVIDIA H100 80GB HBM3
    layout:
      3g.40gb: 1
      2g.20gb: 1
      1g.10gb: 2
    gpu_count: 8
    driver_version: "550.54.15"
    config_name: pool-inference

- name: One layout per GPU index, from discovered facts
  gpufleet.platform.mig_layout:
    gpu_facts: "{{ ansible_facts.gpufleet_gpu_facts }}"
    layout:
      - all-1g.10gb
      - {3g.40gb: 2}
      - disabled

- name: Write the mig-parted config
  ansible.builtin.copy:
    content: "{{ plan.mig_parted | to_nice_yaml(indent=2) }}"
    dest: /etc/nvidia-mig-manager/config.yaml
    mode: "0644"
"""

RETURN = r"""
model:
  description: Catalog key of the GPU model.
  returned: success
  type: str
  sample: a100-sxm4-80gb
config_name:
  description: Name of the config in C(mig_parted).
  returned: success
  type: str
  sample: all-balanced
gpu_count:
  description: Number of GPUs planned.
  returned: success
  type: int
  sample: 2
layout:
  description: The layout per GPU index (a C(profile -> count) map, or null where MIG is disabled).
  returned: success
  type: list
  elements: raw
  sample: [{"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1}, {"1g.10gb": 2, "2g.20gb": 1, "3g.40gb": 1}]
placements:
  description: Per GPU index, each GPU instance as C(profile@start memory slice).
  returned: success
  type: list
  elements: list
  sample: [["2g.20gb@0", "1g.10gb@2", "1g.10gb@3", "3g.40gb@4"], ["2g.20gb@0", "1g.10gb@2", "1g.10gb@3", "3g.40gb@4"]]
resources:
  description:
    - Kubernetes extended resources the node gets from the device plugin.
    - C(mixed) maps C(nvidia.com/mig-<profile>) (with C(+) written as C(.)) and C(nvidia.com/gpu) (for
      GPUs with MIG disabled) to counts.
    - C(single) is C(nvidia.com/gpu -> N) when every GPU has one and the same profile (or MIG is off on all
      of them), and null when the layout is not uniform.
  returned: success
  type: dict
  sample: {"mixed": {"nvidia.com/mig-1g.10gb": 4, "nvidia.com/mig-2g.20gb": 2, "nvidia.com/mig-3g.40gb": 2}, "single": null}
mig_parted:
  description: A mig-parted configuration document (C(version v1), C(mig-configs)).
  returned: success
  type: dict
  sample:
    version: v1
    mig-configs:
      all-balanced:
        - devices: all
          mig-enabled: true
          mig-devices: {"3g.40gb": 1, "2g.20gb": 1, "1g.10gb": 2}
assumed:
  description: Catalog facts for this model that are assumed rather than read upstream.
  returned: success
  type: list
  elements: str
  sample: ["placement table assumed identical to A100-40GB (go-nvml mock uses the same table)"]
profiles_source:
  description: Where the profile table came from, C(catalog) or C(nvidia-smi mig -lgip).
  returned: success
  type: str
  sample: catalog
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gpufleet.platform.plugins.module_utils.mig import MigLayoutError, plan_from_facts, plan_layout


def main():
    module = AnsibleModule(
        argument_spec=dict(
            model=dict(type="str"),
            gpu_facts=dict(type="dict"),
            layout=dict(type="raw", required=True),
            gpu_count=dict(type="int"),
            driver_version=dict(type="str"),
            config_name=dict(type="str"),
            device_filter=dict(type="bool", default=False),
        ),
        required_one_of=[("model", "gpu_facts")],
        supports_check_mode=True,
    )
    p = module.params
    try:
        if p["gpu_facts"] is not None:
            plan = plan_from_facts(p["gpu_facts"], p["layout"], p["model"], p["gpu_count"], p["driver_version"],
                                   p["config_name"], p["device_filter"])
        else:
            plan = plan_layout(p["model"], p["layout"], p["gpu_count"] if p["gpu_count"] is not None else 1, p["driver_version"],
                               config_name=p["config_name"], device_filter=p["device_filter"])
            plan["profiles_source"] = "catalog"
    except MigLayoutError as e:
        module.fail_json(msg=str(e), suggestions=e.suggestions)
    for warning in plan.pop("warnings"):
        module.warn(warning)
    module.exit_json(changed=False, **plan)


if __name__ == "__main__":
    main()
