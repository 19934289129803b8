# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).
"""Apply what config declares, prune what it no longer declares: the pure part of the ``apply_prune`` action.

Every object the collection writes carries its ownership labels (``app.kubernetes.io/managed-by: gpufleet``,
the component and ``gpufleet.io/cluster``). A component lists its kinds by those labels; what the cluster holds
and config no longer declares is stale (:func:`stale`, the ordering and the namespace rule of
``tenancy.stale_objects``). Before anything is changed, :func:`refusal` decides whether the deletion is safe:
more than ``gpufleet_prune_max`` objects in one component's run, or a Namespace that still has pods, is refused
unless ``gpufleet_allow_prune=true``. In check mode, :func:`split_pending` separates what a dry run can apply
from what waits for a namespace or a CRD the run would create first.

No Ansible imports; plain data in, plain data out.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.gpufleet.platform.plugins.module_utils import tenancy

DEFAULT_MAX = 10
ALLOW_VAR = "gpufleet_allow_prune"
MAX_VAR = "gpufleet_prune_max"
DONE_PHASES = ("Succeeded", "Failed")
# Pods named in a refusal, per namespace (the count is always given).
SHOWN_PODS = 3


def describe(obj):
    """``Kind namespace/name`` (namespaced) or ``Kind name`` (cluster-scoped)."""
    meta = obj.get("metadata") or {}
    where = "%s/%s" % (meta["namespace"], meta.get("name")) if meta.get("namespace") else meta.get("name")
    return "%s %s" % (obj.get("kind"), where)


def api_kind(obj):
    """(apiVersion, kind) of an object or of a kinds entry (``api_version``/``kind``)."""
    return (obj.get("apiVersion") or obj.get("api_version"), obj.get("kind"))


def stale(existing, declared):
    """What the cluster holds (read by the ownership labels) that ``declared`` lacks, as minimal definitions for
    ``state: absent``: namespaced objects first, child Volcano queues before their parents, Namespaces last and
    only those labelled ``gpufleet.io/delete-namespace-on-removal=true``. What is already being deleted (a
    ``metadata.deletionTimestamp``, e.g. a Terminating namespace) is not deleted again."""
    held = [o for o in existing or [] if not (o.get("metadata") or {}).get("deletionTimestamp")]
    return tenancy.stale_objects(held, declared or [])


def live_pods(pods):
    """Names of the pods that still run or wait to (phase not Succeeded or Failed)."""
    return sorted((p.get("metadata") or {}).get("name") for p in pods or []
                  if ((p.get("status") or {}).get("phase")) not in DONE_PHASES)


def refusal(component, stale_objects, busy, max_deletions, keep_hint=""):
    """The message refusing this prune, or None when it may go ahead (the caller skips this when allowed).

    stale_objects: what would be deleted (:func:`stale`); busy: {namespace: [pod names]} for the Namespaces among
    them that still have pods; max_deletions: the most objects one component may delete in one run."""
    reasons = []
    if len(stale_objects) > max_deletions:
        reasons.append("%d objects are no longer declared, more than %s (%d)"
                       % (len(stale_objects), MAX_VAR, max_deletions))
    for namespace in sorted(busy):
        pods = busy[namespace]
        shown = ", ".join(pods[:SHOWN_PODS]) + (", ..." if len(pods) > SHOWN_PODS else "")
        reasons.append("namespace %s still has %d pod%s (%s)"
                       % (namespace, len(pods), "" if len(pods) == 1 else "s", shown))
    if not reasons:
        return None
    keep = "; to keep them, set %s" % keep_hint if keep_hint else ""
    return ("%s: refusing to prune: %s. It would delete: %s. Nothing was changed. To delete them, run again with "
            "-e %s=true%s." % (component, "; ".join(reasons), "; ".join(describe(o) for o in stale_objects),
                               ALLOW_VAR, keep))


def split_pending(objects, namespaces, missing_kinds):
    """Check mode: (applicable, pending). An object is pending when its kind is in ``missing_kinds``
    ((apiVersion, kind) the server does not serve yet: its CRD comes with this run) or it is namespaced and its
    namespace is not among ``namespaces`` (the names that exist): a dry run cannot place it there."""
    existing = set(namespaces or [])
    missing = set(tuple(k) for k in missing_kinds or [])
    applicable, pending = [], []
    for obj in objects:
        namespace = (obj.get("metadata") or {}).get("namespace")
        if api_kind(obj) in missing or (namespace and namespace not in existing):
            pending.append(obj)
        else:
            applicable.append(obj)
    return applicable, pending


def bad_objects(objects):
    """Messages for entries that are not Kubernetes objects (objects[i] ...), empty when all are."""
    out = []
    for i, obj in enumerate(objects):
        if not isinstance(obj, dict):
            out.append("objects[%d] is a %s, not an object" % (i, type(obj).__name__))
            continue
        missing = [k for k in ("apiVersion", "kind") if not obj.get(k)]
        if not isinstance(obj.get("metadata"), dict) or not obj["metadata"].get("name"):
            missing.append("metadata.name")
        if missing:
            out.append("objects[%d] has no %s" % (i, ", ".join(missing)))
    return out


def bad_kinds(kinds):
    """Messages for kinds entries without api_version, kind or selector."""
    out = []
    for i, entry in enumerate(kinds):
        missing = [k for k in ("api_version", "kind", "selector") if not (isinstance(entry, dict) and entry.get(k))]
        if missing:
            out.append("kinds[%d] has no %s" % (i, ", ".join(missing)))
    return out
