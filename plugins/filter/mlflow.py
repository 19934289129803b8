# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).
"""Filters of the mlflow role. The logic is in module_utils/mlflow_registry.py. Documentation: the
<filter name>.yml files next to this one."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.gpufleet.platform.plugins.module_utils import mlflow_registry


def mlflow_secret_data(service, db_password, s3_credentials, admin_password, flask_secret_key):
    """stringData of the tracking server's Secret (never logged: the task that uses it is no_log)."""
    try:
        return mlflow_registry.secret_data(dict(service), db_password, s3_credentials, admin_password,
                                           flask_secret_key)
    except (mlflow_registry.MlflowRegistryError, KeyError, TypeError) as exc:
        raise AnsibleFilterError("mlflow_secret_data: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {"mlflow_secret_data": mlflow_secret_data}
