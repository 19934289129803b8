"""Every role's meta/argument_specs.yml covers exactly the variables of its defaults/main.yml, and its README's
variable table lists exactly those.

STYLE.md: "meta/argument_specs.yml covers every public variable ... a check in CI keeps its keys equal
to defaults/main.yml". Also: every public variable carries the role prefix, a type and a description. The README
table is generated from the spec (tools/gen_docs.py, `make docs`; `make lint` fails when it is stale).
"""
import glob
import os
import re

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


@pytest.mark.parametrize("role", ROLES)
def test_defaults_hold_only_public_variables(role):
    defaults = _load(role, "defaults", "main.yml") or {}
    private = sorted(name for name in defaults if name.startswith("_"))
    assert not private, "roles/%s/defaults/main.yml: %s belong in vars/main.yml (STYLE.md)" % (role, private)


def _readme_table(role):
    with open(os.path.join(ROOT, "roles", role, "README.md")) as handle:
        text = handle.read()
    block = re.search(r"^<!-- BEGIN generated: role variables.*?-->\n(.*?)^<!-- END generated: role variables -->",
                      text, re.M | re.S)
    assert block, "roles/%s/README.md has no generated variable table (markers, then `make docs`)" % role
    return re.findall(r"^\| `([^`]+)` \|", block.group(1), re.M)


@pytest.mark.parametrize("role", ROLES)
def test_readme_table_lists_the_spec_options(role):
    specs = _load(role, "meta", "argument_specs.yml") or {"argument_specs": {}}
    options = []
    for entry in sorted(specs["argument_specs"], key=lambda n: (n != "main", n)):
        options += [name for name in specs["argument_specs"][entry].get("options") or {} if name not in options]
    defaults = _load(role, "defaults", "main.yml") or {}
    rows = _readme_table(role)
    assert rows == options, "roles/%s/README.md lists %s, the spec %s: run `make docs`" % (role, rows, options)
    assert set(rows) == set(defaults), "roles/%s: README table and defaults/main.yml differ" % role
