# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).
"""Filters of the doctor and verify reports (schema gpufleet.platform/report/v1).

Documentation: the report_build.yml, report_table.yml and report_collect.yml files next to this one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.gpufleet.platform.plugins.module_utils import report as r


def report_build(checks, kind, meta=None):
    """The report of a list of checks (kind preflight or verify)."""
    try:
        return r.build(kind, list(checks) if isinstance(checks, (list, tuple)) else checks, meta or {})
    except r.ReportError as e:
        raise AnsibleFilterError("report_build: %s" % e)


def report_table(report):
    """The report as a fixed-width text table plus a summary line."""
    try:
        return r.table(report)
    except r.ReportError as e:
        raise AnsibleFilterError("report_table: %s" % e)


def report_collect(hostvars, hosts, fact=r.DEFAULT_FACT):
    """Every host's checks from its fact; a failed ``completed`` check for a host that lacks it."""
    try:
        return r.collect(hostvars, hosts, fact)
    except r.ReportError as e:
        raise AnsibleFilterError("report_collect: %s" % e)


def report_failures(report):
    """Every failure of a report as ``host: check: message``."""
    try:
        return r.failure_lines(report)
    except (KeyError, TypeError) as e:
        raise AnsibleFilterError("report_failures needs a report built by report_build: %s" % e)


class FilterModule(object):
    def filters(self):
        return {
            "report_build": report_build,
            "report_table": report_table,
            "report_collect": report_collect,
            "report_failures": report_failures,
        }
