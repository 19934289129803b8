# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).
"""Filters of the private helm_release role. Documentation: the <filter name>.yml files next to this one."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

import yaml

from ansible.errors import AnsibleFilterError

_SOURCE = re.compile(r"^# Source: (\S+)\s*$", re.M)
# A bare `=` list item (prometheus-operator's AlertmanagerConfig matcher enum) is the YAML 1.1 `value` tag,
# which PyYAML cannot construct (go-yaml reads the string "="): quote it before parsing.
_BARE_EQUALS = re.compile(r"(?m)^(\s*- )=$")


def _from_crds_dir(source):
    """Whether a `helm template` source path is a file of a chart's crds/ directory (not a template).

    ``gpu-operator/crds/x.yaml`` and ``kube-prometheus-stack/charts/crds/crds/x.yaml`` are; anything under a
    ``templates/`` directory (``kserve-crd/templates/x.yaml``, ``kueue/templates/crd/x.yaml``) is not.
    """
    parts = source.split("/")
    return "templates" not in parts and "crds" in parts[1:-1]


def helm_chart_crds(template_output):
    """The CustomResourceDefinitions of the charts' crds/ directories in ``helm template --include-crds`` output.

    Helm installs crds/ files once and never upgrades them, so the role applies them itself. CRDs a chart ships
    as templates are Helm-managed (installed and upgraded with the release, carrying Helm's ownership
    metadata): applying them beforehand would make `helm install` refuse to adopt them, so they are left out.
    """
    if template_output is None:
        return []
    if not isinstance(template_output, str):
        raise AnsibleFilterError("helm_chart_crds expects the text of helm template, got %s" % type(template_output).__name__)
    out = []
    source = None  # a file's documents follow its "# Source:" line, across the file's own "---" separators
    for chunk in re.split(r"(?m)^---[ \t]*$", template_output):
        match = _SOURCE.search(chunk)
        if match:
            source = match.group(1)
        if source is None or not _from_crds_dir(source):
            continue
        try:
            docs = list(yaml.safe_load_all(_BARE_EQUALS.sub(r'\1"="', chunk)))
        except yaml.YAMLError as exc:
            raise AnsibleFilterError("cannot parse %s from helm template: %s" % (source, exc))
        out += [d for d in docs if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"]
    return out


class FilterModule(object):
    def filters(self):
        return {"helm_chart_crds": helm_chart_crds}
