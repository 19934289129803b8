"""Contract: every Helm value the monitoring role sets exists in the upstream kube-prometheus-stack 88.5.3
values file, and the role's argument spec matches its defaults.

The role renders roles/monitoring/templates/values.yml.j2 from the plan; this test renders it the way
Ansible does (Templar, trim_blocks) for the shipped configs and a config that turns every branch on
(storage, air-gap image registry, Alertmanager receivers), then walks every key path against the
upstream values.yaml ($GPUFLEET_SHARED/upstream). Skipped when that directory is absent.
"""
import os
import re

import pytest
import yaml

from ansible_collections.gpufleet.platform.tests.unit.roles.role_contract import (
    ROOT, SHARED, load_yaml, render_role_template, value_paths)

VALUES = os.path.join(SHARED, "upstream", "kube-prometheus-stack", "88.5.3", "values",
                      "kube-prometheus-stack.values.yaml")
ROLE = os.path.join(ROOT, "roles", "monitoring")
# Keys the upstream values file documents only as a comment (`# configSecret:`), checked in its text.
COMMENTED = {"alertmanager.alertmanagerSpec.configSecret": r"\n    # configSecret:"}


def _load(path):
    return load_yaml(path)


def render(config):
    return render_role_template("monitoring", "values.yml.j2", config)


def paths(tree):
    return value_paths(tree)


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
