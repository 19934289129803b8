# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).
"""The base of the collection's controller-side action plugins that drive kubernetes.core modules
(helm_converge, apply_prune): arguments checked against the subclass's ``ARGS``, ``AnsibleAction`` turned
into the task result, and sub-modules run with the task's module_defaults for them (kubeconfig, context)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleAction
from ansible.executor.module_common import get_action_args_with_defaults
from ansible.plugins.action import ActionBase


class ControllerAction(ActionBase):
    """Subclasses set ``ARGS`` (an argument spec), ``_VALID_ARGS = frozenset(ARGS)`` and ``main``."""

    TRANSFERS_FILES = False
    _requires_connection = False
    ARGS = {}

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ControllerAction, self).run(tmp, task_vars)
        del tmp
        _validation, args = self.validate_argument_spec(argument_spec=self.ARGS)
        try:
            return self.main(args, task_vars, result)
        except AnsibleAction as exc:
            result.update(exc.result)
            return result

    def main(self, args, task_vars, result):
        raise NotImplementedError

    def run_module(self, task_vars, fqcn, module_args):
        """Run a module (kubernetes.core) with the task's module_defaults for it, as a task naming it would."""
        module_args = get_action_args_with_defaults(fqcn, module_args, self._task.module_defaults, self._templar,
                                                    action_groups=self._task._parent._play._action_groups)
        omit = task_vars.get("omit")  # `default(omit)` in module_defaults: drop the key, as a task would
        module_args = dict((k, v) for k, v in module_args.items() if not (omit and v == omit))
        return self._execute_module(module_name=fqcn, module_args=module_args, task_vars=task_vars)
