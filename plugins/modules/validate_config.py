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
module: validate_config
short_description: Validate config.yml and compute the platform plan
version_added: 0.1.0
description:
  - Runs on the controller (an action plugin; no host is contacted).
  - Checks config.yml against the collection's JSON Schema and every cross-field rule (unique nodes and
    addresses, an odd etcd count, pool and team references, MIG layouts against the GPU model's
    profiles and placement rules, quotas against pool capacity, service dependencies, secrets).
  - Reports every problem at once, each naming the key path, the bad value and what is allowed.
    Unknown keys are rejected with the closest valid key suggested. Nothing at or under a secret reference
    (C(secrets.*), a model's C(credentials)) is ever printed.
  - Reads O(path) with the collection's bounded loader (size, alias expansion, nesting, duplicate keys, UTF-8);
    a hostile or malformed file fails with one message naming it.
  - On success sets the fact C(gpufleet_plan), the normalized plan every role reads.
options:
  path:
    description:
      - Path of config.yml on the controller. Mutually exclusive with O(config).
    type: path
  config:
    description:
      - The configuration as a dictionary. Mutually exclusive with O(path).
    type: dict
  check_secrets:
    description:
      - Check that every C(secrets.*.var) names a defined variable that holds no well-known default password, and
        that every C(services.kserve.models[].credentials.var) names a defined variable of the shape the model's
        storage needs.
      - Values are read from the play's variables (for example an Ansible Vault file) and never returned or logged.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Changes nothing in any mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
  action:
    support: full
    description: Runs on the controller as an action plugin.
  platform:
    support: full
    description: Any controller platform.
    platforms: all
author:
  - gpufleet.platform maintainers (@gpufleet)
notes:
  - The schema ships as C(schemas/config.schema.json); the reference is C(docs/config.md).
"""

EXAMPLES = r"""
- name: Validate config.yml before anything changes
  gpufleet.platform.validate_config:
    path: "{{ gpufleet_config_file }}"

- name: Validate a configuration built in the play
  gpufleet.platform.validate_config:
    config: "{{ my_config }}"
    check_secrets: false
"""

RETURN = r"""
ansible_facts:
  description: Facts set on success.
  returned: success
  type: complex
  contains:
    gpufleet_plan:
      description: The normalized plan (defaults filled in, pool capacity and GPU resources, resolved chart sources).
      type: dict
      returned: success
      sample: {"pools": {"a100": {"capacity": {"nvidia.com/gpu": 16}}}}
issues:
  description: Every problem found, one line each, as C(key.path) then the message and the value it got.
  returned: failure
  type: list
  elements: str
  sample: ["gpu_pools.h100.mig.layout: profile '7g.80gb' fits at most once per H100 80GB (got {'7g.80gb': 2})"]
"""
