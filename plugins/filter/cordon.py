# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).
"""Cordons the collection owns: Node patches that cordon a node and mark it (annotation gpufleet.io/cordoned-by),
and patches that uncordon only nodes carrying that mark, so that a run interrupted between cordon and uncordon is
finished by the next run, and a node somebody else cordoned is never uncordoned by the collection.

Documentation: the <filter name>.yml files next to this one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from jinja2 import Undefined

from ansible_collections.gpufleet.platform.plugins.module_utils.prune import DONE_PHASES

CORDONED_BY = "gpufleet.io/cordoned-by"
CORDON_REASON = "gpufleet.io/cordon-reason"


def _by_name(nodes):
    out = {}
    for node in nodes or []:
        name = ((node or {}).get("metadata") or {}).get("name")
        if name:
            out[name] = node
    return out


def _owner(owner):
    if isinstance(owner, Undefined):
        owner._fail_with_undefined_error()  # an undefined owner is an undefined-variable error, not a type error
    if not isinstance(owner, str) or not owner:
        raise AnsibleFilterError("the cordon owner must be a non-empty string (e.g. 'mig', 'remove_node'), got %r"
                                 % (owner,))
    return owner


def _marked_by(node):
    return (((node or {}).get("metadata") or {}).get("annotations") or {}).get(CORDONED_BY)


def _unschedulable(node):
    return bool(((node or {}).get("spec") or {}).get("unschedulable"))


def cordon_patches(nodes, names, owner, reason=""):
    """Node patches that cordon the nodes of ``names`` that are schedulable now and mark them as cordoned by ``owner``.

    ``nodes``: Node objects as k8s_info returns them (with spec). A node already unschedulable is left out: either
    this owner marked it before (an interrupted run; the mark stays as it is), or someone else cordoned it (it gets
    no mark, so the collection never uncordons it). Names that are not in ``nodes`` are left out.
    """
    owner = _owner(owner)
    current = _by_name(nodes)
    patches = []
    for name in sorted(set(names or [])):
        node = current.get(name)
        if node is None or _unschedulable(node):
            continue
        patches.append({"apiVersion": "v1", "kind": "Node",
                        "metadata": {"name": name, "annotations": {CORDONED_BY: owner, CORDON_REASON: str(reason)}},
                        "spec": {"unschedulable": True}})
    return patches


def cordoned_by(nodes, owner):
    """Sorted names of the nodes that carry the mark of ``owner`` (gpufleet.io/cordoned-by=<owner>)."""
    owner = _owner(owner)
    return sorted(name for name, node in _by_name(nodes).items() if _marked_by(node) == owner)


def uncordon_patches(nodes, owner, only=None):
    """Node patches that uncordon the nodes marked as cordoned by ``owner`` and drop the mark.

    ``only``: a list of node names; when given, marked nodes outside it are left out (their target state is not
    reached yet). A node without the mark of ``owner`` is never in the result, whoever cordoned it.
    """
    owner = _owner(owner)
    wanted = None if only is None else set(only)
    patches = []
    for name, node in sorted(_by_name(nodes).items()):
        if _marked_by(node) != owner or (wanted is not None and name not in wanted):
            continue
        patches.append({"apiVersion": "v1", "kind": "Node",
                        "metadata": {"name": name, "annotations": {CORDONED_BY: None, CORDON_REASON: None}},
                        "spec": {"unschedulable": None}})
    return patches


def drain_evictions(pods, node_names):
    """{node: ["namespace/name"]} of the pods a drain of ``node_names`` evicts: unfinished pods on those nodes that
    no DaemonSet owns and that are not mirror (static) pods. A node without any is left out, so that a drained node
    is not drained again (kubernetes.core.k8s_drain deletes DaemonSet pods that mount an emptyDir every time).
    """
    names = set(node_names or [])
    found = {}
    for pod in pods or []:
        spec = (pod or {}).get("spec") or {}
        meta = (pod or {}).get("metadata") or {}
        node = spec.get("nodeName")
        if node not in names or ((pod.get("status") or {}).get("phase")) in DONE_PHASES:
            continue
        if "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
            continue
        if any((ref or {}).get("kind") == "DaemonSet" for ref in meta.get("ownerReferences") or []):
            continue
        found.setdefault(node, []).append("%s/%s" % (meta.get("namespace"), meta.get("name")))
    return dict((node, sorted(items)) for node, items in sorted(found.items()))


def _version_of(node):
    version = ((((node or {}).get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion") or "")
    return version[1:] if version.startswith("v") else version


def _ready(node):
    return any((c or {}).get("type") == "Ready" and (c or {}).get("status") == "True"
               for c in ((node or {}).get("status") or {}).get("conditions") or [])


def _quantity(value):
    """An extended resource count (nvidia.com/gpu: "8"); anything that is not a whole number counts as 0."""
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return 0


def upgrade_done(nodes, names, version, resources=None):
    """Sorted names of the nodes of ``names`` that reached an upgrade's target state: Ready, the kubelet at
    ``version`` (1.35.4 or v1.35.4), and at least the planned count of each resource of ``resources`` allocatable
    (``{node: {resource: count}}``; a node without an entry needs none). Names not in ``nodes`` are left out."""
    if not isinstance(version, str) or not version.strip():
        raise AnsibleFilterError("upgrade_done: the target version must be a non-empty string like 1.35.4, got %r"
                                 % (version,))
    target = version.strip()
    target = target[1:] if target.startswith("v") else target
    if resources is not None and not isinstance(resources, dict):
        raise AnsibleFilterError("upgrade_done: resources must be a mapping node -> {resource: count}, got %s"
                                 % type(resources).__name__)
    current = _by_name(nodes)
    done = []
    for name in sorted(set(names or [])):
        node = current.get(name)
        if node is None or not _ready(node) or _version_of(node) != target:
            continue
        allocatable = ((node.get("status") or {}).get("allocatable") or {})
        planned = (resources or {}).get(name) or {}
        if all(_quantity(allocatable.get(key)) >= _quantity(count) for key, count in planned.items()):
            done.append(name)
    return done


class FilterModule(object):
    def filters(self):
        return {
            "cordon_patches": cordon_patches,
            "cordoned_by": cordoned_by,
            "drain_evictions": drain_evictions,
            "uncordon_patches": uncordon_patches,
            "upgrade_done": upgrade_done,
        }
