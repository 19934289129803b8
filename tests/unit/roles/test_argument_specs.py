"""Every role's meta/argument_specs.yml covers exactly the variables of its defaults/main.yml.

STYLE.md: "meta/argument_specs.yml covers every public variable ... a check in CI keeps its keys equal
to defaults/main.yml". Also: every public variable carries the role prefix, a type and a description.
"""
import glob
import os

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "roles", "*")) if os.path.isdir(p))


def _load(role, *path):
    full = os.path.join(ROOT, "roles", role, *path)
    if not os.path.exists(full):
        return None
    with open(full) as handle:
        return yaml.safe_load(handle) or {}


@pytest.mark.parametrize("role", ROLES)
def test_argument_spec_keys_equal_defaults(role):
    defaults = _load(role, "defaults", "main.yml") or {}
    specs = _load(role, "meta", "argument_specs.yml")
    assert specs is not None, "roles/%s has no meta/argument_specs.yml" % role
    options = specs["argument_specs"]["main"].get("options") or {}
    assert set(options) == set(defaults), (
        "roles/%s: only in defaults: %s; only in argument_specs: %s"
        % (role, sorted(set(defaults) - set(options)), sorted(set(options) - set(defaults))))
    for key, option in options.items():
        if option.get("required"):
            continue  # a required option has no default in the spec
        assert option.get("default") == defaults[key], "roles/%s: %s default differs from defaults/main.yml" % (role, key)


@pytest.mark.parametrize("role", ROLES)
def test_public_variables_are_prefixed_typed_and_described(role):
    specs = _load(role, "meta", "argument_specs.yml") or {"argument_specs": {"main": {}}}
    options = specs["argument_specs"]["main"].get("options") or {}
    for name, spec in options.items():
        assert name.startswith(role + "_"), "roles/%s: %s lacks the prefix %s_" % (role, name, role)
        assert "type" in spec, "roles/%s: %s has no type" % (role, name)
        assert spec.get("description"), "roles/%s: %s has no description" % (role, name)


@pytest.mark.parametrize("role", ROLES)
def test_role_has_readme(role):
    assert os.path.exists(os.path.join(ROOT, "roles", role, "README.md"))
