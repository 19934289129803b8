# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).
"""One Helm release converged in one task (documentation: plugins/modules/helm_converge.py).

Every call to the cluster is a kubernetes.core module run by this plugin, with the task's module_defaults for
that module (kubeconfig, context), check mode and diff mode:

1. ``kubernetes.core.k8s_info``: the deployed revision's Secret (one list call, helm_state.selector);
2. when the chart and values equal the deployed ones: done, ``changed=false`` (no render, no helm run);
3. otherwise, when the chart is new or its version changes: ``kubernetes.core.helm_template`` (always run for
   real: it only renders) and ``kubernetes.core.k8s`` server-side apply of the crds/ CRDs (Helm never upgrades
   them), then ``kubernetes.core.helm`` (install or upgrade), whose result is returned.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleActionFail

from ansible_collections.gpufleet.platform.plugins.filter.helm import helm_chart_crds
from ansible_collections.gpufleet.platform.plugins.module_utils import helm_state
from ansible_collections.gpufleet.platform.plugins.plugin_utils.controller_action import ControllerAction

ARGS = {
    "chart": {"type": "dict", "required": True},
    "name": {"type": "str", "default": ""},
    "namespace": {"type": "str", "default": ""},
    "values": {"type": "dict", "default": {}},
    "wait": {"type": "bool", "default": True},
    "timeout": {"type": "str", "default": "10m0s"},
    "upgrade_crds": {"type": "bool", "default": True},
}
CHART_KEYS = ("name", "version", "source", "ref")
RETURNED = ("changed", "failed", "msg", "command", "status", "stdout", "stderr", "diff", "warnings")


class ActionModule(ControllerAction):
    """Converge one Helm release: one read when it is up to date, else CRDs (on chart change) and install/upgrade."""

    ARGS = ARGS
    _VALID_ARGS = frozenset(ARGS)

    def main(self, args, task_vars, result):
        chart = args["chart"]
        missing = [k for k in CHART_KEYS if not chart.get(k)]
        if missing:
            raise AnsibleActionFail("chart must be a chart of the plan (gpufleet_plan.services.<name>.charts[]): "
                                    "it has no %s" % ", ".join(missing))
        name = args["name"] or chart["name"]
        namespace = args["namespace"] or chart.get("namespace") or ""
        if not namespace:
            raise AnsibleActionFail("release %s: no namespace (give namespace, or a chart with one)" % name)
        repo_url = chart.get("repo_url") if chart["source"] == "repo" else None

        found = self.run_module(task_vars, "kubernetes.core.k8s_info", {
            "api_version": "v1", "kind": "Secret", "namespace": namespace,
            "label_selectors": helm_state.selector(name)})
        if found.get("failed"):
            return self._failed(result, found, "reading the deployed release %s in %s" % (name, namespace))
        try:
            deployed = helm_state.deployed(found.get("resources"), name)
        except helm_state.ReleaseDecodeError as exc:
            raise AnsibleActionFail("release %s in %s: its Helm release Secret cannot be read: %s" % (name, namespace, exc))
        decision = helm_state.decide(deployed, chart["name"], chart["version"], args["values"])
        result.update(release=name, namespace=namespace, decision=decision)
        if decision["up_to_date"]:
            result.update(changed=False, status=_status(deployed),
                          msg="%s %s in %s is up to date (revision %s)" % (name, deployed["chart"], namespace,
                                                                           deployed["revision"]))
            return result

        if args["upgrade_crds"] and decision["chart_changed"]:
            crds = self._chart_crds(task_vars, chart, name, namespace, repo_url, args["values"], result)
            if result.get("failed"):
                return result
            if crds:
                applied = self.run_module(task_vars, "kubernetes.core.k8s", {
                    "state": "present", "apply": True, "definition": crds,
                    "server_side_apply": {"field_manager": "gpufleet", "force_conflicts": True}})
                if applied.get("failed"):
                    return self._failed(result, applied, "applying the CRDs of %s %s" % (chart["name"], chart["version"]))
                result["crds_changed"] = bool(applied.get("changed"))

        helm = self.run_module(task_vars, "kubernetes.core.helm", _drop_none({
            "name": name, "chart_ref": chart["ref"], "chart_repo_url": repo_url, "chart_version": chart["version"],
            "release_namespace": namespace, "create_namespace": True, "values": args["values"],
            "wait": args["wait"], "wait_timeout": args["timeout"], "skip_crds": False, "state": "present"}))
        for key in RETURNED:
            if key in helm:
                result[key] = helm[key]
        result["changed"] = bool(helm.get("changed")) or bool(result.get("crds_changed"))
        return result

    def _chart_crds(self, task_vars, chart, name, namespace, repo_url, values, result):
        """The crds/ CustomResourceDefinitions of the chart, rendered for real even in check mode."""
        check_mode = self._task.check_mode
        self._task.check_mode = False  # helm template renders only; it changes nothing
        try:
            rendered = self.run_module(task_vars, "kubernetes.core.helm_template", _drop_none({
                "chart_ref": chart["ref"], "chart_repo_url": repo_url,
                "chart_version": chart["version"] if chart["source"] != "local" else None,
                "include_crds": True, "release_name": name, "release_namespace": namespace, "values": values}))
        finally:
            self._task.check_mode = check_mode
        if rendered.get("failed"):
            self._failed(result, rendered, "rendering %s %s for its CRDs" % (chart["name"], chart["version"]))
            return []
        return helm_chart_crds(rendered.get("stdout") or "")

    @staticmethod
    def _failed(result, sub, what):
        result.update(failed=True, msg="%s: %s" % (what, sub.get("msg", "failed")))
        for key in ("command", "stdout", "stderr"):
            if sub.get(key):
                result[key] = sub[key]
        return result


def _drop_none(args):
    return dict((k, v) for k, v in args.items() if v is not None)


def _status(release):
    """The deployed release as kubernetes.core.helm reports it (status), values included."""
    return {"name": release["name"], "namespace": release["namespace"], "revision": release["revision"],
            "status": release["status"], "chart": release["chart"], "app_version": release["app_version"],
            "values": release["values"]}
