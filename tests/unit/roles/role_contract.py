"""Shared helpers for the role contract tests: render a role's template the way Ansible does, and walk
the keys of a values tree to compare them with an upstream chart's values file."""
import copy
import os

import yaml

from ansible_collections.gpufleet.platform.plugins.filter import tenancy as tenancy_filters
from ansible_collections.gpufleet.platform.plugins.module_utils import config_plan

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))))
SHARED = os.environ.get("GPUFLEET_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))


def load_yaml(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


def role_variables(role, plan, extra=None):
    """A role's defaults and vars, the plan as ``gpufleet_plan``, then ``extra`` (as the play would hold them)."""
    role_dir = os.path.join(ROOT, "roles", role)
    variables = dict(load_yaml(os.path.join(role_dir, "defaults", "main.yml")) or {})
    vars_file = os.path.join(role_dir, "vars", "main.yml")
    if os.path.exists(vars_file):
        variables.update(load_yaml(vars_file) or {})
    variables["gpufleet_plan"] = plan
    variables.update(extra(plan) if callable(extra) else extra or {})
    return variables


def render_role_template(role, template, config, extra=None):
    """Validate ``config``, then render roles/<role>/templates/<template> with Ansible's Templar; parsed YAML."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    plan = config_plan.validate(copy.deepcopy(config))
    loader = DataLoader()
    loader.set_basedir(os.path.join(ROOT, "roles", role))
    templar = Templar(loader=loader, variables=role_variables(role, plan, extra))
    # the collection's own filters under their FQCN, as a play would resolve them
    for module in (tenancy_filters,):
        for name, func in module.FilterModule().filters().items():
            templar.environment.filters["gpufleet.platform." + name] = func
    with open(os.path.join(ROOT, "roles", role, "templates", template)) as handle:
        return yaml.safe_load(templar.template(handle.read()))


def value_paths(tree, free_form=(), prefix=()):
    """Key paths (tuples) of the leaves of ``tree``; a non-empty map under a ``free_form`` dotted path is a leaf."""
    for key, value in tree.items():
        path = prefix + (key,)
        if isinstance(value, dict) and value and ".".join(path) not in free_form:
            yield from value_paths(value, free_form, path)
        else:
            yield path
