# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).
"""Filters of the team_access role: teams[].access and cluster.admin_group as RBAC objects, ResourceQuotas and
LimitRanges, and the per-user kubeconfigs.

The logic is in module_utils/access.py. Documentation: the <filter name>.yml files next to this one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError, AnsibleUndefinedVariable

from ansible_collections.gpufleet.platform.plugins.module_utils import access, tenancy
from ansible_collections.gpufleet.platform.plugins.module_utils.plan_guard import plan_guard

_plan = plan_guard(("pools", "cluster"), AnsibleFilterError, AnsibleUndefinedVariable)


def access_objects(plan):
    """{namespaces, cluster, namespaced}: the admin ClusterRoleBinding and each team's access objects."""
    try:
        return access.access_objects(_plan(plan))
    except tenancy.TenancyError as exc:
        raise AnsibleFilterError(str(exc))


def access_kubeconfig_users(plan):
    """The users that get a kubeconfig: {user, team, namespace, file, csr} each."""
    return access.kubeconfig_users(_plan(plan))


def access_csr(entry, plan, csr_pem, days=365):
    """The CertificateSigningRequest of one access_kubeconfig_users entry for a PEM CSR."""
    if not isinstance(entry, dict) or "csr" not in entry:
        raise AnsibleFilterError("access_csr expects an entry of access_kubeconfig_users")
    return access.csr_object(_plan(plan), entry, str(csr_pem), int(days))


def access_kubeconfig(entry, admin, context, certificate, key):
    """The kubeconfig (a dict) of one access_kubeconfig_users entry: the admin kubeconfig's server and CA, the
    issued certificate (base64 PEM, the CSR's status.certificate) and the private key (PEM)."""
    if not isinstance(admin, dict):
        raise AnsibleFilterError("access_kubeconfig expects the admin kubeconfig as a mapping")
    try:
        return access.kubeconfig(admin, context or None, entry, str(certificate), str(key))
    except (tenancy.TenancyError, KeyError, OSError) as exc:
        raise AnsibleFilterError("cluster.kubeconfig: cannot build a user kubeconfig from it: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {
            "access_objects": access_objects,
            "access_kubeconfig_users": access_kubeconfig_users,
            "access_csr": access_csr,
            "access_kubeconfig": access_kubeconfig,
        }
