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
module: gpu_facts
short_description: Discover NVIDIA GPUs, their MIG state and health with nvidia-smi
version_added: 0.1.0
description:
  - Runs C(nvidia-smi -q -x) on the host and returns facts about every NVIDIA GPU, in
    C(ansible_facts.gpufleet_gpu_facts).
  - Handles the XML of every driver generation seen in the wild (R418 without MIG elements up to R595);
    C(N/A), C([N/A]), C(Not Supported) and C(Unknown Error) values read as missing, and C(Unknown Error)
    is reported as a health problem.
  - Falls back to C(nvidia-smi --query-gpu=... --format=csv,noheader,nounits) when the XML query fails.
  - When a GPU has MIG enabled, also runs C(nvidia-smi -L) (MIG device profile names and UUIDs) and
    C(nvidia-smi mig -lgip) (the GPU instance profiles the hardware offers, which override the catalog).
  - Identifies the GPU model by its PCI device ID against the collection's GPU catalog (see
    M(gpufleet.platform.mig_layout) for the list of catalog keys), because name strings change across
    drivers and form factors.
  - A host without C(nvidia-smi), without a loaded driver, or without GPUs is not an error; the facts then
    have C(gpus=[]) and a C(reason).
  - An nvidia-smi failure that needs the operator (driver/library version mismatch, lost GPU, missing
    permission) fails the task with a message that says what to do.
author:
  - gpufleet.platform maintainers (@gpufleet)
options:
  nvidia_smi_path:
    description:
      - Path of the nvidia-smi binary.
      - When not set, C(nvidia-smi) is searched on C(PATH), then in C(/usr/local/nvidia/bin) and
        C(/run/nvidia/driver/usr/bin) (the GPU Operator's driver container root).
    type: path
  mig_details:
    description:
      - Run C(nvidia-smi -L) and C(nvidia-smi mig -lgip) when a GPU has MIG enabled, to name MIG devices
        and read the hardware's GPU instance profiles.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: The module only reads; it runs the same queries in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
  facts:
    support: full
    description: Returns its results as C(ansible_facts.gpufleet_gpu_facts).
notes:
  - Never reports C(changed).
  - C(nvidia-smi -q -x) does not name MIG profiles; without C(nvidia-smi -L) the profile of a MIG device
    is inferred from its memory size and SM count and marked C(profile_source=inferred).
seealso:
  - module: gpufleet.platform.mig_layout
"""

EXAMPLES = r"""
- name: Discover GPUs
  gpufleet.platform.gpu_facts:

- name: Show the GPU models of the host
  ansible.builtin.debug:
    msg: "{{ ansible_facts.gpufleet_gpu_facts.models }}"

- name: Stop when a GPU reports a health problem
  ansible.builtin.assert:
    that: ansible_facts.gpufleet_gpu_facts.healthy
    fail_msg: "{{ ansible_facts.gpufleet_gpu_facts.health | map(attribute='message') | list }}"

- name: Use the driver container's nvidia-smi
  gpufleet.platform.gpu_facts:
    nvidia_smi_path: /run/nvidia/driver/usr/bin/nvidia-smi
    mig_details: false
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    gpufleet_gpu_facts:
      description: What nvidia-smi says about the host's NVIDIA GPUs.
      returned: always
      type: dict
      contains:
        source:
          description: The nvidia-smi query the facts come from, or null when nvidia-smi is missing.
          type: str
          returned: always
          sample: nvidia-smi -q -x
        reason:
          description: Why C(gpus) is empty (no nvidia-smi, no driver, no GPU); null otherwise.
          type: str
          returned: always
          sample: null
        driver_version:
          description: NVIDIA driver version.
          type: str
          returned: always
          sample: 535.54.03
        cuda_version:
          description: CUDA version the driver supports (null with the CSV fallback).
          type: str
          returned: always
          sample: "12.2"
        count:
          description: Number of GPUs.
          type: int
          returned: always
          sample: 8
        models:
          description: GPU count per catalog model key (C(unknown) for GPUs not in the catalog).
          type: dict
          returned: always
          sample: {"h100-sxm5-80gb": 8}
        mig_capable_count:
          description: Number of MIG-capable GPUs.
          type: int
          returned: always
          sample: 8
        mig_enabled_count:
          description: Number of GPUs whose current MIG mode is enabled.
          type: int
          returned: always
          sample: 0
        healthy:
          description: False when C(health) holds a problem of severity C(error).
          type: bool
          returned: always
          sample: true
        health:
          description:
            - Problems found, each with C(gpu) (index or null), C(uuid), C(check), C(severity)
              (C(error) or C(warning)) and C(message) (what to do).
            - Checks are C(remapped_rows_pending), C(remapped_rows_failure), C(retired_pages_pending),
              C(ecc_uncorrected_volatile), C(ecc_uncorrected_aggregate), C(mig_mode_change_pending),
              C(ecc_mode_change_pending), C(reset_required), C(unknown_error), C(unknown_model),
              C(gpu_count_mismatch), C(xml_query_failed).
          type: list
          elements: dict
          returned: always
          sample:
            - gpu: 0
              uuid: GPU-513536b6-7d19-9063-b049-1e69664bb298
              check: mig_mode_change_pending
              severity: warning
              message: "GPU 0 (00000000:01:00.0): MIG mode is disabled but enabled is pending; ..."
        gpus:
          description:
            - One entry per GPU, in nvidia-smi index order.
            - Keys C(index), C(uuid), C(name), C(brand), C(architecture), C(pci_device_id) (C(0xDDDD10DE)),
              C(pci_sub_system_id), C(pci_bus_id), C(model) (catalog key or null), C(model_source),
              C(memory_total_mib), C(compute_capability), C(mig_capable), C(mig_mode_current) and
              C(mig_mode_pending) (C(enabled), C(disabled) or null), C(mig_devices), C(mig_profiles),
              C(mig_profiles_source), C(persistence_mode), C(ecc_mode_current), C(ecc_mode_pending),
              C(ecc_errors_uncorrected_volatile), C(ecc_errors_uncorrected_aggregate),
              C(retired_pages_single_bit), C(retired_pages_double_bit), C(retired_pages_pending),
              C(remapped_rows_correctable), C(remapped_rows_uncorrectable), C(remapped_rows_pending),
              C(remapped_rows_failure), C(reset_required), C(power_limit_w), C(power_draw_w),
              C(temperature_c), C(unknown_error_fields).
            - Each of C(mig_devices) has C(index), C(gpu_instance_id), C(compute_instance_id), C(profile),
              C(profile_source) (C(nvidia-smi -L) or C(inferred)), C(uuid), C(memory_mib), C(sm_count).
          type: list
          elements: dict
          returned: always
          sample:
            - index: 0
              name: NVIDIA A100-SXM4-80GB
              model: a100-sxm4-80gb
              pci_device_id: "0x20B210DE"
              pci_bus_id: "00000000:01:00.0"
              memory_total_mib: 81920
              compute_capability: "8.0"
              mig_capable: true
              mig_mode_current: enabled
              mig_mode_pending: enabled
              mig_devices:
                - index: 0
                  gpu_instance_id: 3
                  compute_instance_id: 0
                  profile: 1g.20gb
                  profile_source: inferred
                  uuid: null
                  memory_mib: 19968
                  sm_count: 14
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gpufleet.platform.plugins.module_utils.nvidia_smi import NvidiaSmiError, collect, empty_facts

SEARCH_DIRS = ["/usr/local/nvidia/bin", "/run/nvidia/driver/usr/bin", "/usr/bin"]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            nvidia_smi_path=dict(type="path"),
            mig_details=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    binary = module.params["nvidia_smi_path"] or module.get_bin_path("nvidia-smi", opt_dirs=SEARCH_DIRS)
    if not binary or not os.access(binary, os.X_OK):
        where = binary or "PATH or %s" % ", ".join(SEARCH_DIRS)
        facts = empty_facts("nvidia-smi not found (%s): no NVIDIA driver is installed on this host." % where)
        module.exit_json(changed=False, ansible_facts=dict(gpufleet_gpu_facts=facts))

    def run(args):
        try:
            return module.run_command(args, environ_update=dict(LC_ALL="C"))
        except OSError as e:
            return 127, "", str(e)

    try:
        facts = collect(run, binary, mig_details=module.params["mig_details"])
    except NvidiaSmiError as e:
        module.fail_json(msg=e.message, kind=e.kind, rc=e.rc, output=e.output)
    module.exit_json(changed=False, ansible_facts=dict(gpufleet_gpu_facts=facts))


if __name__ == "__main__":
    main()
