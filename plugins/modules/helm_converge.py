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
module: helm_converge
short_description: Converge one Helm release with one read when it is already up to date
version_added: 0.2.0
description:
  - Runs on the controller (an action plugin). Every cluster call is a C(kubernetes.core) module
    (M(kubernetes.core.k8s_info), M(kubernetes.core.helm_template), M(kubernetes.core.k8s),
    M(kubernetes.core.helm)) run with the task's C(module_defaults) for that module, so C(kubeconfig) and
    C(context) come from the play's C(group/kubernetes.core.k8s) and C(group/kubernetes.core.helm) defaults.
  - Reads the deployed revision of the release from the Secret Helm 3 keeps it in (one list call). When that
    revision is C(deployed), of the same chart name and version, with the same user values as O(values), the
    release is up to date and nothing else runs (C(changed=false)). This is the comparison
    M(kubernetes.core.helm) makes without the helm-diff plugin, made with one API read.
  - Otherwise, on first install or a chart version change (and with O(upgrade_crds)), renders the chart and
    applies the CustomResourceDefinitions of its C(crds/) directories server-side (Helm installs those once and
    never upgrades them), then installs or upgrades the release with M(kubernetes.core.helm).
  - The collection's private C(helm_release) role is its only intended caller.
options:
  chart:
    description:
      - The chart as the validated plan resolves it (C(gpufleet_plan.services.<name>.charts[])).
      - Keys C(name), C(version), C(source) (C(repo), C(oci) or C(local)), C(ref), and C(repo_url) for
        C(repo) sources, C(namespace) for the default namespace.
    type: dict
    required: true
  name:
    description: Release name; default the chart name.
    type: str
    default: ""
  namespace:
    description: Release namespace; default the chart's C(namespace).
    type: str
    default: ""
  values:
    description: The release values (user-supplied values, as C(helm get values) shows them).
    type: dict
    default: {}
  wait:
    description: Wait for the release's resources when it is installed or upgraded.
    type: bool
    default: true
  timeout:
    description: How long to wait (a Helm duration).
    type: str
    default: 10m0s
  upgrade_crds:
    description: Apply the chart's C(crds/) CustomResourceDefinitions on install and on a chart version change.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: The chart is rendered for real; the CRD apply is a server-side dry run; the release is not changed.
  diff_mode:
    support: full
    description: The diff M(kubernetes.core.helm) reports is returned.
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
  - Needs C(helm) on the controller's PATH only when the release is not up to date.
"""

EXAMPLES = r"""
- name: Install or upgrade the Kueue release
  gpufleet.platform.helm_converge:
    chart: "{{ gpufleet_plan.services.kueue.charts[0] }}"
    values: {controllerManager: {replicas: 2}}
    timeout: 10m0s
"""

RETURN = r"""
decision:
  description: Why the release was or was not converged.
  returned: always
  type: dict
  contains:
    up_to_date:
      description: The deployed revision has the wanted chart and values.
      type: bool
    chart_changed:
      description: First install or another chart version (the CRDs were applied).
      type: bool
    reasons:
      description: What differs (C(not installed), C(chart A deployed, B wanted), C(status S), C(values differ)).
      type: list
      elements: str
status:
  description: The release (name, namespace, revision, status, chart, app_version, values).
  returned: success
  type: dict
crds_changed:
  description: Whether applying the chart's CRDs changed any.
  returned: when the CRDs were applied
  type: bool
"""
