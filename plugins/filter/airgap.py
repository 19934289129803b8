# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).
"""Filters of playbooks/airgap_bundle.yml. Documentation: the <filter name>.yml files next to this one."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import yaml

from ansible.errors import AnsibleFilterError
from jinja2 import Undefined

from ansible_collections.gpufleet.platform.plugins.module_utils import airgap


def _plan(plan, name):
    if isinstance(plan, Undefined):
        plan._fail_with_undefined_error()  # an undefined plan is an undefined-variable error, not a type error
    if not isinstance(plan, dict):
        raise AnsibleFilterError("%s expects gpufleet_plan (a mapping), got %r" % (name, plan))


def airgap_release_tasks(plan):
    _plan(plan, "airgap_release_tasks")
    return airgap.release_tasks(plan)


def airgap_manifest(rendered, plan, fetched=None):
    _plan(plan, "airgap_manifest")
    try:
        return airgap.build_manifest(rendered, plan, fetched)
    except yaml.YAMLError as exc:  # helm template output that does not parse: name it
        raise AnsibleFilterError("airgap_manifest: cannot parse helm template output: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {"airgap_manifest": airgap_manifest, "airgap_release_tasks": airgap_release_tasks}
