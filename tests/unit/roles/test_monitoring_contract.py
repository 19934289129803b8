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
# Keys of a subchart (its values file is not in ../shared): the subchart must be a dependency of the pinned chart
# (Chart.yaml, the mirror in ../shared/upstream/charts), at the version whose values file has the key.
SUBCHART = {"kube-state-metrics.metricLabelsAllowlist": ("kube-state-metrics", "8.4.0")}
CHART_YAML = os.path.join(SHARED, "upstream", "charts", "kube-prometheus-stack-88.5.3", "Chart.yaml")


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
        if dotted in SUBCHART:
            continue  # test_subchart_values_are_dependencies
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


def test_subchart_values_are_dependencies(upstream):
    if not os.path.exists(CHART_YAML):
        pytest.skip("chart mirror not found (%s)" % CHART_YAML)
    deps = {d["name"]: d["version"] for d in _load(CHART_YAML)["dependencies"]}
    tree, _text = upstream
    for dotted, (name, version) in SUBCHART.items():
        assert dotted.split(".", maxsplit=1)[0] == name and deps.get(name) == version, (dotted, deps.get(name))
        assert name in tree, "kube-prometheus-stack values have no %s section" % name


def test_kube_state_metrics_exports_the_pool_label():
    """The GPU usage recording rules join on kube_node_labels{label_gpufleet_io_pool}."""
    values = render(CONFIGS["example"]())
    assert values["kube-state-metrics"]["metricLabelsAllowlist"] == ["nodes=[gpufleet.io/pool]"]
