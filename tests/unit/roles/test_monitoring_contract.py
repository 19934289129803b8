"""Contract: every Helm value the monitoring role sets exists in the upstream kube-prometheus-stack 88.5.3
values file, and the role's argument spec matches its defaults.

The role renders roles/monitoring/templates/values.yml.j2 from the plan; this test renders it the way
Ansible does (Templar, trim_blocks) for the shipped configs and a config that turns every branch on
(storage, air-gap image registry, Alertmanager receivers), then walks every key path against the
upstream values.yaml ($GPUFLEET_SHARED/upstream). Skipped when that directory is absent.
"""
import copy
import os
import re

import pytest
import yaml

from ansible_collections.gpufleet.platform.plugins.module_utils import config_rules

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SHARED = os.environ.get("GPUFLEET_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
VALUES = os.path.join(SHARED, "upstream", "kube-prometheus-stack", "88.5.3", "values",
                      "kube-prometheus-stack.values.yaml")
ROLE = os.path.join(ROOT, "roles", "monitoring")
# Keys the upstream values file documents only as a comment (`# configSecret:`), checked in its text.
COMMENTED = {"alertmanager.alertmanagerSpec.configSecret": r"\n    # configSecret:"}


def _load(path):
    with open(path) as fh:
        return yaml.safe_load(fh)


def render(config):
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    plan = config_rules.validate(copy.deepcopy(config))
    variables = dict(_load(os.path.join(ROLE, "defaults", "main.yml")))
    variables.update(_load(os.path.join(ROLE, "vars", "main.yml")))
    variables["gpufleet_plan"] = plan
    loader = DataLoader()
    loader.set_basedir(ROLE)
    templar = Templar(loader=loader, variables=variables)
    with open(os.path.join(ROLE, "templates", "values.yml.j2")) as fh:
        return yaml.safe_load(templar.template(fh.read()))


def paths(tree, prefix=()):
    for key, value in tree.items():
        path = prefix + (key,)
        if isinstance(value, dict) and value:
            yield from paths(value, path)
        else:
            yield path


def full_config():
    config = _load(os.path.join(ROOT, "config.example.yml"))
    config["airgap"] = {"enabled": True, "chart_mirror": {"type": "local", "location": "/srv/charts"},
                        "image_registry": "registry.example.internal:5000/mirror"}
    config["secrets"]["alertmanager_receivers"] = {"var": "vault_alertmanager_receivers"}
    return config


CONFIGS = {
    "example": lambda: _load(os.path.join(ROOT, "config.example.yml")),
    "lab": lambda: _load(os.path.join(ROOT, "inventories", "lab", "config.yml")),
    "every-branch": full_config,
}


@pytest.fixture(scope="module")
def upstream():
    if not os.path.exists(VALUES):
        pytest.skip("upstream values file not found (%s): ../shared is absent" % VALUES)
    with open(VALUES) as fh:
        text = fh.read()
    return yaml.safe_load(text), text


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_values_keys_exist_upstream(upstream, name):
    tree, text = upstream
    values = render(CONFIGS[name]())
    missing = []
    for path in paths(values):
        dotted = ".".join(path)
        if dotted in COMMENTED:
            assert re.search(COMMENTED[dotted], text), dotted
            continue
        node = tree
        for i, key in enumerate(path):
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, dict) and not node and i > 0:
                break  # upstream documents a free-form map here ({}), e.g. storageSpec
            else:
                missing.append(dotted)
                break
    assert not missing, "not in kube-prometheus-stack 88.5.3 values.yaml: %s" % missing


def test_every_branch_is_rendered():
    values = render(full_config())
    assert values["global"]["imageRegistry"] == "registry.example.internal:5000/mirror"
    assert values["prometheus"]["prometheusSpec"]["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"] == {
        "requests": {"storage": "100Gi"}}
    assert values["alertmanager"]["alertmanagerSpec"]["configSecret"] == "gpufleet-alertmanager-config"


def test_selectors_pick_up_every_monitor_and_rule():
    values = render(CONFIGS["lab"]())
    spec = values["prometheus"]["prometheusSpec"]
    for kind in ("serviceMonitor", "podMonitor", "rule", "probe", "scrapeConfig"):
        assert spec["%sSelectorNilUsesHelmValues" % kind] is False


def test_no_secret_in_values():
    values = render(full_config())
    grafana = values["grafana"]
    assert "adminPassword" not in grafana and "adminUser" not in grafana
    assert grafana["admin"] == {"existingSecret": "gpufleet-grafana-admin", "userKey": "admin-user",
                                "passwordKey": "admin-password"}
    assert "config" not in values.get("alertmanager", {})


def test_retention_from_config():
    config = CONFIGS["example"]()
    config["services"]["monitoring"]["retention"] = "30d"
    values = render(config)
    assert values["prometheus"]["prometheusSpec"]["retention"] == "30d"


def test_argument_spec_keys_equal_defaults():
    defaults = _load(os.path.join(ROLE, "defaults", "main.yml"))
    spec = _load(os.path.join(ROLE, "meta", "argument_specs.yml"))["argument_specs"]["main"]["options"]
    assert set(spec) == set(defaults)
    for key, option in spec.items():
        assert option["default"] == defaults[key], key
