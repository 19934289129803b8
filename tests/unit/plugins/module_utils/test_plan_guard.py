"""The gpufleet_plan guard the filter files share (module_utils/plan_guard.py): same messages in every file."""
import re

import pytest
from jinja2 import Undefined

from ansible.errors import AnsibleFilterError, AnsibleUndefinedVariable
from ansible.template import AnsibleUndefined

from ansible_collections.gpufleet.platform.plugins.filter import slurm, tenancy, verify
from ansible_collections.gpufleet.platform.plugins.module_utils.plan_guard import is_undefined, plan_guard

EXPECTED = "expected the gpufleet_plan fact (run playbooks/validate.yml first), got %r"

# (a filter that reads only the plan, the keys its file requires, what an undefined plan raises)
FILTERS = [
    (slurm.slurm_problems, ("pools", "services"), None),
    (tenancy.volcano_objects, ("pools", "cluster"), AnsibleUndefinedVariable),
    (verify.verify_charts, ("pools", "services"), AnsibleUndefinedVariable),
]


class Boom(Exception):
    pass


def test_returns_the_plan_holding_every_key():
    plan = {"pools": {}, "services": {}}
    assert plan_guard(("pools", "services"), Boom)(plan) is plan


@pytest.mark.parametrize("value", [None, [], "plan", {"pools": {}}])
def test_anything_else_names_its_type(value):
    with pytest.raises(Boom, match="^%s$" % re.escape(EXPECTED % type(value).__name__)):
        plan_guard(("pools", "services"), Boom)(value)


@pytest.mark.parametrize("undefined", [Undefined(name="gpufleet_plan"), AnsibleUndefined(name="gpufleet_plan")])
def test_undefined(undefined):
    assert is_undefined(undefined) and not is_undefined({}) and not is_undefined(None)
    with pytest.raises(Boom, match="^gpufleet_plan is undefined: run playbooks/validate.yml first$"):
        plan_guard(("pools",), Boom, Boom)(undefined)
    with pytest.raises(Exception, match="'gpufleet_plan' is undefined"):  # the Undefined's own error
        plan_guard(("pools",), Boom)(undefined)


@pytest.mark.parametrize("func, keys, undefined_error", FILTERS, ids=lambda v: getattr(v, "__name__", None))
def test_filter_files_use_the_guard(func, keys, undefined_error):
    partial = {keys[0]: {}}
    with pytest.raises(AnsibleFilterError, match="^%s$" % re.escape(EXPECTED % "dict")):
        func(partial)
    with pytest.raises(AnsibleFilterError, match=re.escape(EXPECTED % "list")):
        func([])
    if undefined_error is None:
        with pytest.raises(Exception, match="'gpufleet_plan' is undefined"):
            func(AnsibleUndefined(name="gpufleet_plan"))
    else:
        with pytest.raises(undefined_error, match="gpufleet_plan is undefined: run playbooks/validate.yml first"):
            func(AnsibleUndefined(name="gpufleet_plan"))
