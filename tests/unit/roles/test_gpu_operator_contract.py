"""Contract: every Helm value the gpu_operator role sets exists in the upstream chart's values file.

The role renders roles/gpu_operator/templates/values.yml.j2 from the plan; this test renders it the way
Ansible does (Templar, trim_blocks) for the shipped configs and walks every key path of the result
against the upstream gpu-operator v26.7.0 values.yaml ($GPUFLEET_SHARED/upstream). It is skipped when
that directory is absent.
"""
import os

import pytest

from ansible_collections.gpufleet.platform.plugins.filter import gpu_layer
from ansible_collections.gpufleet.platform.tests.unit.roles.role_contract import (
    ROOT, SHARED, load_yaml, render_role_template, value_paths)

VALUES = os.path.join(SHARED, "upstream", "gpu-operator", "v26.7.0", "values", "gpu-operator.values.yaml")
ROLE = os.path.join(ROOT, "roles", "gpu_operator")
# Keys under which the upstream chart documents a free-form map (none set by the role today).
FREE_FORM = ()
# Values the upstream values file documents only as a commented-out example; each must appear there commented and
# in the ClusterPolicy CRD (the chart's clusterpolicy.yaml template passes it through).
COMMENTED_UPSTREAM = {("dcgmExporter", "hpcJobMapping"): ("# hpcJobMapping:", "hpcJobMapping:")}
CRD = os.path.join(SHARED, "upstream", "gpu-operator", "v26.7.0", "crds", "nvidia.com_clusterpolicies.yaml")


def _load(path):
    return load_yaml(path)


def render(config):
    return render_role_template("gpu_operator", "values.yml.j2", config, extra=lambda plan: {
        "_gpu_operator_settings": gpu_layer.gpu_operator_settings(plan["pools"])})


def paths(tree):
    return value_paths(tree, FREE_FORM)


CONFIGS = ["config.example.yml", "inventories/lab/config.yml"]


@pytest.fixture(scope="module")
def upstream():
    if not os.path.exists(VALUES):
        pytest.skip("upstream values file not found (%s): ../shared is absent" % VALUES)
    return _load(VALUES)


@pytest.mark.parametrize("path", CONFIGS)
def test_every_value_key_exists_upstream(upstream, path):
    values = render(_load(os.path.join(ROOT, path)))
    missing = []
    for key_path in paths(values):
        if key_path[:2] in COMMENTED_UPSTREAM:
            continue  # checked by test_commented_upstream_values_are_documented
        node = upstream
        for part in key_path:
            if not isinstance(node, dict) or part not in node:
                missing.append(".".join(key_path))
                break
            node = node[part]
    assert not missing, "values the role sets that upstream v26.7.0 does not have: %s" % missing


def test_commented_upstream_values_are_documented(upstream):
    with open(VALUES) as fh:
        values_text = fh.read()
    with open(CRD) as fh:
        crd_text = fh.read()
    for (parent, key), (commented, crd_key) in COMMENTED_UPSTREAM.items():
        assert commented in values_text and crd_key in crd_text, (parent, key)


def test_dcgm_job_mapping_only_with_slurm_and_monitoring():
    config = _load(os.path.join(ROOT, "config.example.yml"))
    config["services"]["monitoring"]["enabled"] = True
    config["services"]["slurm"]["enabled"] = True
    for team in config.get("teams", []):  # Slurm's node sets use pools the teams' quotas also count
        team["quotas"] = {}
    values = render(config)
    assert values["dcgmExporter"]["hpcJobMapping"] == {"enabled": True, "directory": "/var/lib/dcgm-exporter/job-mapping"}
    config["services"]["slurm"]["enabled"] = False
    assert "hpcJobMapping" not in render(config)["dcgmExporter"]
    config["services"]["slurm"]["enabled"] = True
    config["services"]["monitoring"]["enabled"] = False
    assert "hpcJobMapping" not in render(config)["dcgmExporter"]


def test_values_follow_the_config():
    config = _load(os.path.join(ROOT, "config.example.yml"))
    values = render(config)
    # a100/h100-mig operator-mode, l40s preinstalled: the Operator installs the driver, labels keep it off l40s
    assert values["driver"] == {"enabled": True}
    assert values["mig"] == {"strategy": "mixed"}
    assert values["migManager"]["config"] == {"create": False, "name": "gpufleet-mig-parted-config",
                                              "default": "all-disabled"}
    assert values["devicePlugin"]["config"] == {"create": False, "name": "gpufleet-device-plugin-config",
                                                "default": "default"}
    assert values["cdi"] == {"enabled": True} and values["nfd"] == {"enabled": True}
    assert values["dcgmExporter"]["serviceMonitor"]["enabled"] is True
    assert "repository" not in values["driver"]  # no air gap in the example

    config["services"]["monitoring"]["enabled"] = False
    config["services"]["gpu_operator"].update(cdi=False, nfd=False)
    for pool in config["gpu_pools"].values():
        pool["driver"] = {"mode": "preinstalled"}
    values = render(config)
    assert values["driver"] == {"enabled": False}
    assert values["dcgmExporter"]["serviceMonitor"] == {"enabled": False}
    assert values["cdi"] == {"enabled": False} and values["nfd"] == {"enabled": False}


def test_driver_version_and_air_gap():
    config = _load(os.path.join(ROOT, "inventories", "lab", "config.yml"))
    for pool in config["gpu_pools"].values():
        pool["driver"] = {"mode": "operator", "version": "580.105.08"}
    values = render(config)
    assert values["driver"]["version"] == "580.105.08"
    assert values["driver"]["repository"] == "registry.invalid/gpufleet-lab/nvidia"
    assert values["toolkit"]["repository"] == "registry.invalid/gpufleet-lab/nvidia/k8s"
    assert values["migManager"]["repository"] == "registry.invalid/gpufleet-lab/nvidia/cloud-native"


SRC = os.path.join(SHARED, "upstream", "src", "gpu-operator-v26.7.0")
CHART = os.path.join(SHARED, "upstream", "charts", "gpu-operator-v26.7.0")


def test_dcgm_exporter_per_pod_attribution():
    config = _load(os.path.join(ROOT, "config.example.yml"))
    assert render(config)["dcgmExporter"]["env"] == [{"name": "DCGM_EXPORTER_KUBERNETES", "value": "true"}]
    off = render_role_template("gpu_operator", "values.yml.j2", config, extra=lambda plan: {
        "_gpu_operator_settings": gpu_layer.gpu_operator_settings(plan["pools"]),
        "gpu_operator_dcgm_pod_attribution": False})
    assert "env" not in off["dcgmExporter"]


def test_dcgm_exporter_env_reaches_the_exporter():
    """The chart passes dcgmExporter.env into the ClusterPolicy (whose schema has it), and the Operator sets each
    entry on the exporter container over its DaemonSet asset's env."""
    template = os.path.join(CHART, "templates", "clusterpolicy.yaml")
    controls = os.path.join(SRC, "controllers", "object_controls.go")
    if not (os.path.exists(template) and os.path.exists(controls)):
        pytest.skip("gpu-operator v26.7.0 chart or source not found under %s/upstream" % SHARED)
    with open(template) as fh:
        assert "env: {{ toYaml .Values.dcgmExporter.env | nindent 6 }}" in fh.read()
    with open(controls) as fh:
        go = fh.read()
    assert "for _, env := range config.DCGMExporter.Env {" in go
    crd = _load(CRD)
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    env = spec["dcgmExporter"]["properties"]["env"]["items"]["properties"]
    assert {"name", "value"} <= set(env)
