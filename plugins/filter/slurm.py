# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).
"""Filters of the slurm role: the Slinky charts' Helm values from the plan.

The logic is in module_utils/slurm.py. Documentation: the <filter name>.yml files next to this one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.gpufleet.platform.plugins.module_utils import slurm
from ansible_collections.gpufleet.platform.plugins.module_utils.plan_guard import plan_guard

_plan = plan_guard(("pools", "services"), AnsibleFilterError)


def slurm_values(plan, auth_secret, jwt_secret, db_secret=None, gres_conf="", login_replicas=1,
                 dcgm=True):
    """Values of the slurm chart (the Slurm cluster) from the plan."""
    try:
        return slurm.slurm_values(_plan(plan), str(auth_secret), str(jwt_secret), db_secret or None, gres_conf,
                                  int(login_replicas), bool(dcgm))
    except slurm.SlurmError as exc:
        raise AnsibleFilterError(str(exc))


def slurm_operator_values(plan):
    """Values of the slurm-operator chart from the plan."""
    return slurm.operator_values(_plan(plan))


def slurm_problems(plan):
    """Messages for Slurm node sets that do not fit their pools (empty when all fit)."""
    return slurm.problems(_plan(plan))


class FilterModule(object):
    def filters(self):
        return {
            "slurm_values": slurm_values,
            "slurm_operator_values": slurm_operator_values,
            "slurm_problems": slurm_problems,
        }
