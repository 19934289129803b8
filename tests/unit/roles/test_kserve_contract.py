"""Contract: every Helm value the kserve role sets exists in the upstream kserve-resources / kserve-runtime-configs
v0.20.0 values files, and the serving roles' argument specs match their defaults.

The role renders roles/kserve/templates/values.yml.j2 from the plan; this test renders it the way Ansible does
(Templar) for a plain and an air-gapped config and walks every key path of the result against the upstream values
($GPUFLEET_SHARED/upstream). Skipped when that directory is absent.
"""
import os

import pytest

from ansible_collections.gpufleet.platform.tests.unit.roles.role_contract import (
    ROOT, SHARED, load_yaml, render_role_template, value_paths)

UPSTREAM = os.path.join(SHARED, "upstream", "kserve", "v0.20.0", "values")
ROLE = os.path.join(ROOT, "roles", "kserve")


def _load(path):
    return load_yaml(path)


def _config(airgap):
    config = _load(os.path.join(ROOT, "config.example.yml"))
    config["services"]["kserve"]["enabled"] = True
    config["services"]["kserve"]["models"][0]["namespace"] = "serving"
    if airgap:
        config["airgap"] = {"enabled": True, "chart_mirror": {"type": "local", "location": "/srv/charts"},
                            "image_registry": "registry.example.internal:5000/mirror"}
    return config


def render(template, config):
    return render_role_template("kserve", template, config)


def paths(tree):
    return value_paths(tree)


def _has(tree, path):
    node = tree
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


@pytest.fixture(scope="module")
def upstream():
    if not os.path.isdir(UPSTREAM):
        pytest.skip("upstream KServe values not found (%s): ../shared is absent" % UPSTREAM)
    return {name: _load(os.path.join(UPSTREAM, "%s.values.yaml" % name))
            for name in ("kserve-resources", "kserve-runtime-configs")}


@pytest.mark.parametrize("airgap", [False, True], ids=["online", "airgap"])
def test_resources_values_exist_upstream(upstream, airgap):
    values = render("values.yml.j2", _config(airgap))
    assert values["kserve"]["controller"]["deploymentMode"] == "Standard"  # the chart default is Knative
    missing = [".".join(p) for p in paths(values) if not _has(upstream["kserve-resources"], p)]
    assert missing == [], "values the role sets that kserve-resources v0.20.0 lacks: %s" % missing
    if airgap:
        assert values["kserve"]["controller"]["image"] == "registry.example.internal:5000/mirror/kserve/kserve-controller"


def test_runtime_configs_values_exist_upstream(upstream):
    vars_main = _load(os.path.join(ROLE, "vars", "main.yml"))
    values = vars_main["_kserve_chart_values"]["kserve-runtime-configs"]
    missing = [".".join(p) for p in paths(values) if not _has(upstream["kserve-runtime-configs"], p)]
    assert missing == []


def test_objects_render_from_the_example():
    objects = render("objects.yml.j2", _config(False))
    kinds = [o["kind"] for o in objects]
    assert kinds == ["ClusterServingRuntime", "InferenceService"]
    isvc = objects[1]
    model = isvc["spec"]["predictor"]["model"]
    assert model["storageUri"] == "hf://meta-llama/Llama-3.1-8B-Instruct"
    assert model["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "--tensor-parallel-size=1" in model["args"] and "--max-model-len=8192" in model["args"]
    assert isvc["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "default"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert objects[0]["spec"]["containers"][0]["image"] == "docker.io/vllm/vllm-openai:v0.11.0"
