"""Contract: every Helm value the kserve role sets exists in the upstream kserve-resources / kserve-runtime-configs
v0.20.0 values files, and the serving roles' argument specs match their defaults.

The role renders roles/kserve/templates/values.yml.j2 from the plan; this test renders it the way Ansible does
(Templar) for a plain and an air-gapped config and walks every key path of the result against the upstream values
($GPUFLEET_SHARED/upstream). Skipped when that directory is absent.
"""
import copy
import os

import pytest
import yaml

from ansible_collections.gpufleet.platform.plugins.module_utils import config_rules

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SHARED = os.environ.get("GPUFLEET_SHARED", os.path.join(os.path.dirname(ROOT), "shared"))
UPSTREAM = os.path.join(SHARED, "upstream", "kserve", "v0.20.0", "values")
ROLE = os.path.join(ROOT, "roles", "kserve")


def _load(path):
    with open(path) as fh:
        return yaml.safe_load(fh)


def _config(airgap):
    config = _load(os.path.join(ROOT, "config.example.yml"))
    config["services"]["kserve"]["enabled"] = True
    config["services"]["kserve"]["models"][0]["namespace"] = "serving"
    if airgap:
        config["airgap"] = {"enabled": True, "chart_mirror": {"type": "local", "location": "/srv/charts"},
                            "image_registry": "registry.example.internal:5000/mirror"}
    return config


def _variables(plan):
    variables = dict(_load(os.path.join(ROLE, "defaults", "main.yml")))
    variables.update(_load(os.path.join(ROLE, "vars", "main.yml")))
    variables["gpufleet_plan"] = plan
    return variables


def render(template, config):
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    plan = config_rules.validate(copy.deepcopy(config))
    templar = Templar(loader=DataLoader(), variables=_variables(plan))
    with open(os.path.join(ROLE, "templates", template)) as fh:
        return yaml.safe_load(templar.template(fh.read()))


def paths(tree, prefix=()):
    for key, value in tree.items():
        path = prefix + (key,)
        if isinstance(value, dict) and value:
            yield from paths(value, path)
        else:
            yield path


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


@pytest.mark.parametrize("role", ["kserve", "cert_manager"])
def test_argument_specs_match_defaults(role):
    defaults = _load(os.path.join(ROOT, "roles", role, "defaults", "main.yml"))
    spec = _load(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml"))["argument_specs"]["main"]["options"]
    assert sorted(spec) == sorted(defaults)
    for key, option in spec.items():
        assert option["default"] == defaults[key], key
