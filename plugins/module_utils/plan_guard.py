# -*- coding: utf-8 -*-
# Copyright: gpufleet.platform contributors
# SPDX-License-Identifier: Apache-2.0 OR GPL-3.0-or-later
# Apache License 2.0 (see LICENSE), or at your option GNU General Public License v3.0+
# (see https://www.gnu.org/licenses/gpl-3.0.txt), like every module file (see README, Licensing).
"""The check a filter file makes before it reads the ``gpufleet_plan`` fact, in one place.

Pure (module_utils imports neither Ansible nor Jinja2): the filter file passes the error classes it raises.

    _plan = plan_guard(("pools", "services"), AnsibleFilterError, AnsibleUndefinedVariable)
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

HINT = "run playbooks/validate.yml first"


def is_undefined(value):
    """Whether ``value`` is a Jinja2 Undefined (told by its class's method, so that this file imports no Jinja2)."""
    return callable(getattr(type(value), "_fail_with_undefined_error", None))


def plan_guard(keys, error, undefined_error=None):
    """A function ``_plan(plan)`` that returns ``plan`` when it is a mapping holding every key of ``keys``.

    An undefined plan raises ``undefined_error("gpufleet_plan is undefined: run playbooks/validate.yml first")``,
    or without ``undefined_error`` the Undefined's own error (it names the undefined variable). Any other value
    raises ``error`` naming the type it got.
    """
    keys = tuple(keys)

    def _plan(plan):
        if is_undefined(plan):
            if undefined_error is not None:
                raise undefined_error("gpufleet_plan is undefined: %s" % HINT)
            plan._fail_with_undefined_error()  # an undefined plan is an undefined-variable error, not a type error
        if not isinstance(plan, dict) or any(key not in plan for key in keys):
            raise error("expected the gpufleet_plan fact (%s), got %r" % (HINT, type(plan).__name__))
        return plan

    return _plan
