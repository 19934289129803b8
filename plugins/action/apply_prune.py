# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).
"""Apply the declared objects, prune what config no longer declares (documentation: plugins/modules/apply_prune.py).

Every call to the cluster is a kubernetes.core module run by this plugin, with the task's module_defaults for
that module (kubeconfig, context), check mode and diff mode. The order makes a refusal change nothing:

1. ``kubernetes.core.k8s_info`` per kind, by the ownership labels (also in check mode without prune: a kind the
   server does not serve yet is pending); stale = held and not declared (prune.stale);
2. for the stale Namespaces, their pods (``k8s_info``); the guard (prune.refusal) fails the task here, before
   any change, unless allowed;
3. check mode: the namespaces (``k8s_info``), so that what waits for a namespace or CRD is reported, not dry-run;
4. ``kubernetes.core.k8s`` server-side apply of the objects, in order (one call);
5. ``kubernetes.core.k8s`` ``state: absent`` of the stale objects (one call; not in check mode).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible.errors import AnsibleActionFail

from ansible_collections.gpufleet.platform.plugins.module_utils import prune
from ansible_collections.gpufleet.platform.plugins.plugin_utils.controller_action import ControllerAction

ARGS = {
    "component": {"type": "str", "required": True},
    "objects": {"type": "list", "elements": "raw", "default": []},
    "declared": {"type": "list", "elements": "raw", "default": []},
    "kinds": {"type": "list", "elements": "raw", "default": []},
    "prune": {"type": "bool", "default": True},
    "max_deletions": {"type": "int", "default": prune.DEFAULT_MAX},
    "allow": {"type": "bool", "default": False},
    "keep_hint": {"type": "str", "default": ""},
    "field_manager": {"type": "str", "default": "gpufleet"},
    "delete_wait": {"type": "bool", "default": False},
    "delete_timeout": {"type": "int", "default": 120},
    "webhook_retries": {"type": "int", "default": 5},
    "webhook_retry_delay": {"type": "int", "default": 2},
}
HIDDEN = ["metadata.managedFields", "status"]


class ActionModule(ControllerAction):
    """Apply objects server-side, then delete what the ownership labels find and config no longer declares."""

    ARGS = ARGS
    _VALID_ARGS = frozenset(ARGS)

    def main(self, args, task_vars, result):
        problems = prune.bad_objects(args["objects"]) + prune.bad_objects(args["declared"]) \
            + prune.bad_kinds(args["kinds"])
        if args["max_deletions"] < 0:
            problems.append("max_deletions must be 0 or more (got %d)" % args["max_deletions"])
        if problems:
            raise AnsibleActionFail("%s: %s" % (args["component"], "; ".join(problems)))
        check = bool(self._task.check_mode)
        result.update(changed=False, applied=[], pending=[], pruned=[], refused=False, diff=[])

        existing, missing = [], []
        if args["kinds"] and (args["prune"] or check):
            for entry in args["kinds"]:
                found = self._k8s(task_vars, "kubernetes.core.k8s_info", {
                    "api_version": entry["api_version"], "kind": entry["kind"],
                    "label_selectors": [entry["selector"]], "hidden_fields": HIDDEN},
                    "reading the %s objects of %s" % (entry["kind"], args["component"]))
                if found.get("api_found") is False:
                    missing.append(prune.api_kind(entry))
                existing += found.get("resources") or []
        stale = prune.stale(existing, args["objects"] + args["declared"]) if args["prune"] else []

        if stale and not args["allow"]:
            busy = {}
            for obj in stale:
                if obj["kind"] == "Namespace":
                    pods = self._k8s(task_vars, "kubernetes.core.k8s_info", {
                        "api_version": "v1", "kind": "Pod", "namespace": obj["metadata"]["name"],
                        "hidden_fields": ["metadata.managedFields", "spec"]},
                        "reading the pods of namespace %s" % obj["metadata"]["name"])
                    names = prune.live_pods(pods.get("resources"))
                    if names:
                        busy[obj["metadata"]["name"]] = names
            refused = prune.refusal(args["component"], stale, busy, args["max_deletions"], args["keep_hint"])
            if refused:
                result.update(failed=True, refused=True, msg=refused, pruned=[prune.describe(o) for o in stale])
                return result

        objects = args["objects"]
        if check and objects:
            namespaces = []
            if any((o.get("metadata") or {}).get("namespace") for o in objects):
                listed = self._k8s(task_vars, "kubernetes.core.k8s_info", {
                    "api_version": "v1", "kind": "Namespace", "hidden_fields": ["metadata.managedFields", "spec"]},
                    "reading the namespaces")
                namespaces = [n["metadata"]["name"] for n in listed.get("resources") or []]
            objects, pending = prune.split_pending(objects, namespaces, missing)
            result["pending"] = [prune.describe(o) for o in pending]
            result["changed"] = bool(pending)

        if objects:
            applied = self._apply(task_vars, objects, args)
            subs = (applied.get("result") or {}).get("results") if len(objects) > 1 else [applied]
            for obj, sub in zip(objects, subs or []):
                if sub.get("changed"):
                    result["applied"].append(prune.describe(obj))
                    if sub.get("diff"):
                        result["diff"].append(dict(sub["diff"], before_header=prune.describe(obj),
                                                   after_header=prune.describe(obj)))
            result["changed"] = result["changed"] or bool(applied.get("changed"))

        if stale:
            result["pruned"] = [prune.describe(o) for o in stale]
            result["changed"] = True
            for obj in stale:
                result["diff"].append({"before_header": prune.describe(obj),
                                       "after_header": "%s (deleted)" % prune.describe(obj),
                                       "before": obj, "after": ""})
            if not check:
                self._k8s(task_vars, "kubernetes.core.k8s", {
                    "state": "absent", "definition": stale, "wait": args["delete_wait"],
                    "wait_timeout": args["delete_timeout"]},
                    "deleting what %s no longer declares" % args["component"])
        result["msg"] = _summary(args["component"], result, check)
        return result

    def _apply(self, task_vars, objects, args):
        """One server-side apply of the objects. A webhook whose informer has not yet seen an object created a
        moment before in the same apply refuses the next one (Volcano: a child Queue whose parent it cannot
        find yet): the apply, idempotent, is run again, at most ``webhook_retries`` times."""
        module_args = {"state": "present", "apply": True, "definition": objects,
                       "server_side_apply": {"field_manager": args["field_manager"]}}
        what = "applying the objects of %s" % args["component"]
        for attempt in range(args["webhook_retries"] + 1):
            try:
                return self._k8s(task_vars, "kubernetes.core.k8s", module_args, what)
            except AnsibleActionFail as exc:
                if attempt == args["webhook_retries"] or "admission webhook" not in str(exc):
                    raise
            time.sleep(args["webhook_retry_delay"])
        return None  # not reached: the last attempt returns or raises

    def _k8s(self, task_vars, fqcn, module_args, what):
        """Run a kubernetes.core module with the task's module_defaults for it (kubeconfig, context); fail naming
        what it was doing."""
        out = self.run_module(task_vars, fqcn, module_args)
        if out.get("failed"):
            raise AnsibleActionFail("%s: %s" % (what, out.get("msg", "failed")))
        return out


def _summary(component, result, check):
    parts = []
    if result["applied"]:
        parts.append("%s %d" % ("would apply" if check else "applied", len(result["applied"])))
    if result["pending"]:
        parts.append("would create with their namespace or CRD: %s" % "; ".join(result["pending"]))
    if result["pruned"]:
        parts.append("%s: %s" % ("would delete" if check else "deleted", "; ".join(result["pruned"])))
    return "%s: %s" % (component, ", ".join(parts) if parts else "up to date")
