# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# Apache License 2.0 (see LICENSE)
"""Controller-side validation of config.yml (documentation: plugins/modules/validate_config.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.gpufleet.platform.plugins.module_utils import config_derive, config_issues, config_plan, config_rules
from ansible_collections.gpufleet.platform.plugins.plugin_utils import config_loader

display = Display()

ARGS = {
    "path": {"type": "path"},
    "config": {"type": "dict"},
    "check_secrets": {"type": "bool", "default": True},
}


class ActionModule(ActionBase):
    """Validate config.yml on the controller and publish the normalized plan as ``gpufleet_plan``."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(ARGS)

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(
            argument_spec=ARGS, mutually_exclusive=[("path", "config")], required_one_of=[("path", "config")])
        result["changed"] = False
        if args["config"] is not None:
            config, source = args["config"], "the config argument"
        else:
            source = os.path.abspath(os.path.expanduser(args["path"]))
            try:
                config = config_loader.load(source, self._loader)
            except config_loader.ConfigFileError as exc:
                result.update(failed=True, msg=str(exc))
                return result
        config = config_derive.to_plain(config)
        secret_values = self._secret_values(config, task_vars) if args["check_secrets"] else None
        try:
            plan = config_plan.validate(config, secret_values=secret_values)
        except config_issues.ConfigValidationError as exc:
            result.update(failed=True, msg="%s\n(source: %s)" % (to_native(exc), source),
                          issues=[str(issue) for issue in exc.issues[:config_issues.MAX_REPORTED]])
            return result
        for warning in plan["warnings"]:
            display.warning("config.yml: %s" % warning)
        result["ansible_facts"] = {"gpufleet_plan": plan}
        result["msg"] = "config.yml is valid: %d nodes, %d GPU pools, %d teams" % (
            len(plan["nodes"]), len(plan["pools"]), len(plan["teams"]))
        return result

    def _secret_values(self, config, task_vars):
        """Values of the variables that secret references name (``secrets.*.var`` and the models'
        ``credentials.var``), templated so vaulted values decrypt.

        Only those variables are read; values never leave this plugin (no result key holds them).
        """
        values = {}
        for name in config_rules.credential_vars(config):
            if name in task_vars:
                try:
                    values[name] = self._templar.template(task_vars[name])
                except AnsibleError:
                    values[name] = None
        return values
