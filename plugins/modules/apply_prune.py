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
module: apply_prune
short_description: Apply the objects config declares, delete those it no longer declares, with a guard
version_added: 0.2.0
description:
  - Runs on the controller (an action plugin). Every cluster call is a C(kubernetes.core) module
    (M(kubernetes.core.k8s_info), M(kubernetes.core.k8s)) run with the task's C(module_defaults) for that
    module, so C(kubeconfig) and C(context) come from the play's C(group/kubernetes.core.k8s) defaults.
  - Reads each of O(kinds) by its ownership label selector. What the cluster holds and neither O(objects) nor
    O(declared) contains is stale. A Namespace is stale only when it carries
    C(gpufleet.io/delete-namespace-on-removal=true).
  - Before anything is changed, refuses (fails, changing nothing) when more than O(max_deletions) objects are
    stale or a stale Namespace still has pods (phase not Succeeded or Failed), unless O(allow). The message names
    every object it would delete and how to allow it.
  - Then applies O(objects) server-side in the order given (one M(kubernetes.core.k8s) call) and deletes the
    stale objects (one call; namespaced objects first, Namespaces last).
  - The collection's private C(apply_prune) role is its only intended caller.
options:
  component:
    description: The component (C(kueue), C(volcano), C(kserve)...), named in every message.
    type: str
    required: true
  objects:
    description: The definitions to apply, parents first (Namespaces before what they hold).
    type: list
    elements: raw
    default: []
  declared:
    description:
      - More objects config declares that are applied elsewhere (e.g. Secrets applied with C(no_log)); they are
        kept, not applied. C(apiVersion), C(kind), C(metadata.name) and C(metadata.namespace) are enough.
    type: list
    elements: raw
    default: []
  kinds:
    description:
      - The kinds the component owns, each C(api_version), C(kind) and C(selector) (the label selector of its
        ownership labels). Listed across all namespaces.
    type: list
    elements: raw
    default: []
  prune:
    description: Delete what config no longer declares. With C(false) nothing is read or deleted.
    type: bool
    default: true
  max_deletions:
    description: The most objects this call deletes without O(allow).
    type: int
    default: 10
  allow:
    description: Delete even over O(max_deletions) or a Namespace that still has pods.
    type: bool
    default: false
  keep_hint:
    description: How the user keeps the objects instead (e.g. C(services.kueue.prune=false)), named in a refusal.
    type: str
    default: ""
  field_manager:
    description: Server-side apply field manager.
    type: str
    default: gpufleet
  delete_wait:
    description: Wait until each deleted object is gone (finalizers done).
    type: bool
    default: false
  delete_timeout:
    description: Seconds to wait for each deleted object with O(delete_wait).
    type: int
    default: 120
  webhook_retries:
    description:
      - How many times the apply is run again when an admission webhook refuses it (a webhook whose cache has not
        yet seen an object created a moment before in the same apply, such as Volcano's for a child Queue).
    type: int
    default: 5
  webhook_retry_delay:
    description: Seconds between those runs.
    type: int
    default: 2
attributes:
  check_mode:
    support: full
    description: >-
      The apply is a server-side dry run; objects waiting for a namespace or a CRD this run creates are reported in
      RV(pending); RV(pruned) lists what would be deleted; nothing is deleted. The guard refuses as the run would.
  diff_mode:
    support: full
    description: The apply diff of each changed object, and each deleted object as a removal.
  action:
    support: full
    description: Runs on the controller as an action plugin.
  platform:
    support: full
    description: Any controller platform.
    platforms: all
author:
  - gpufleet.platform maintainers (@gpufleet)
"""

EXAMPLES = r"""
- name: Apply the Volcano Queues, delete those of removed teams
  gpufleet.platform.apply_prune:
    component: volcano
    objects: "{{ queues }}"
    kinds:
      - api_version: scheduling.volcano.sh/v1beta1
        kind: Queue
        selector: app.kubernetes.io/managed-by=gpufleet,app.kubernetes.io/component=volcano,gpufleet.io/cluster=lab
    max_deletions: 10
    keep_hint: "services.volcano.prune: false"
"""

RETURN = r"""
applied:
  description: The objects the apply changed (would change in check mode), as C(Kind namespace/name).
  returned: always
  type: list
  elements: str
  sample: ["ClusterQueue research"]
pending:
  description: Check mode, objects not dry-run because their namespace or CRD does not exist yet.
  returned: always
  type: list
  elements: str
  sample: ["LocalQueue interns/default"]
pruned:
  description: The objects deleted (would be, in check mode; would have been, when refused).
  returned: always
  type: list
  elements: str
  sample: ["LocalQueue interns/default", "ClusterQueue interns", "Namespace interns"]
refused:
  description: The guard refused the deletion; nothing was changed.
  returned: always
  type: bool
"""
