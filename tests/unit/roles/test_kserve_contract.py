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
LLMISVC_CRD = os.path.join(SHARED, "upstream", "kserve", "v0.20.0", "crds", "serving.kserve.io_llminferenceservices.yaml")
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
            for name in ("kserve-resources", "kserve-runtime-configs", "kserve-llmisvc-resources")}


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
    assert objects[0]["spec"]["containers"][0]["image"] == "docker.io/vllm/vllm-openai:v0.24.0"


def _llm_config(airgap=False):
    """The example with its model served by an LLMInferenceService (s3://, a cache PVC, on a tainted pool)."""
    config = _config(airgap)
    kserve = config["services"]["kserve"]
    kserve["llmisvc"] = True
    model = kserve["models"][0]
    for key in ("min_replicas", "max_replicas"):
        model.pop(key, None)
    model.update(kind="LLMInferenceService", replicas=2, storage_uri="s3://models/llama-3.1-8b",
                 credentials={"var": "vault_s3_models"}, cache={"size": "100Gi"})
    return config


@pytest.mark.parametrize("airgap", [False, True], ids=["online", "airgap"])
def test_llmisvc_resources_values_exist_upstream(upstream, airgap):
    values = render("llmisvc_values.yml.j2", _llm_config(airgap))
    # kserve-resources (installed first) owns the shared ConfigMap, Issuer and ClusterStorageContainer
    assert values["kserve"]["createSharedResources"] is False
    assert upstream["kserve-llmisvc-resources"]["kserve"]["createSharedResources"] is True
    missing = [".".join(p) for p in paths(values) if not _has(upstream["kserve-llmisvc-resources"], p)]
    assert missing == [], "values the role sets that kserve-llmisvc-resources v0.20.0 lacks: %s" % missing
    if airgap:
        assert values["kserve"]["llmisvc"]["controller"]["image"] == \
            "registry.example.internal:5000/mirror/kserve/llmisvc-controller"


def _crd_schema(version):
    if not os.path.exists(LLMISVC_CRD):
        pytest.skip("upstream LLMInferenceService CRD not found (%s): ../shared is absent" % LLMISVC_CRD)
    crd = _load(LLMISVC_CRD)
    served = {v["name"]: v for v in crd["spec"]["versions"]}
    assert served[version]["served"] and served[version]["storage"]  # the role applies the storage version
    return served[version]["schema"]["openAPIV3Schema"]


def _unknown_fields(obj, schema, path=""):
    """Key paths of ``obj`` that the structural ``schema`` does not define (the API server would prune them);
    an object schema without properties (metadata, a free-form map) takes any key."""
    out = []
    if isinstance(obj, dict):
        props = schema.get("properties")
        for key, value in obj.items():
            if props is not None and key in props:
                out.extend(_unknown_fields(value, props[key], "%s.%s" % (path, key)))
            elif props is None and isinstance(schema.get("additionalProperties"), dict):
                out.extend(_unknown_fields(value, schema["additionalProperties"], "%s.%s" % (path, key)))
            elif props is not None:
                out.append("%s.%s" % (path, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            out.extend(_unknown_fields(value, schema.get("items", {}), "%s[%d]" % (path, i)))
    return out


def test_llm_inference_service_renders_against_the_upstream_crd():
    objects = render("objects.yml.j2", _llm_config())
    assert [o["kind"] for o in objects] == ["ClusterServingRuntime", "ServiceAccount", "PersistentVolumeClaim",
                                            "LLMInferenceService"]
    llm = objects[-1]
    assert llm["apiVersion"] == "serving.kserve.io/v1alpha2"
    schema = _crd_schema("v1alpha2")
    assert _unknown_fields(llm, schema) == []
    assert _unknown_fields({"spec": {"replica": 1, "template": {"containers": [{"name": "main", "argz": []}]}}},
                           schema) == [".spec.replica", ".spec.template.containers[0].argz"]  # the check checks
    assert llm["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "gpufleet"
    spec = llm["spec"]
    assert spec["model"] == {"uri": "s3://models/llama-3.1-8b", "name": "llama-8b"}
    assert spec["replicas"] == 2 and spec["parallelism"] == {"tensor": 1}
    assert spec["labels"] == {"kueue.x-k8s.io/queue-name": "default"}  # the pods' labels: Kueue admits them
    template = spec["template"]
    assert template["serviceAccountName"] == "llama-8b-storage"
    assert template["nodeSelector"] == {"gpufleet.io/pool": "l40s"}
    assert template["volumes"] == [{"name": "model-cache", "persistentVolumeClaim": {"claimName": "llama-8b-cache"}}]
    (main,) = template["containers"]
    assert main["name"] == "main"  # merged by name into KServe's LLMInferenceServiceConfig template
    assert main["args"] == ["--max-model-len=8192", "--dtype=bfloat16", "--gpu-memory-utilization=0.9"]
    assert main["resources"] == {"requests": {"cpu": "4", "memory": "32Gi", "nvidia.com/gpu": "1"},
                                 "limits": {"memory": "32Gi", "nvidia.com/gpu": "1"}}
    assert {"name": "HF_HOME", "value": "/mnt/cache/huggingface"} in main["env"]


def test_llmisvc_presets_follow_the_switch():
    vars_main = _load(os.path.join(ROLE, "vars", "main.yml"))
    assert "llmisvc" in vars_main["_kserve_chart_values"]["kserve-runtime-configs"]["kserve"]["llmisvcConfigs"][
        "enabled"]
    assert set(vars_main["_kserve_chart_values"]) >= {"kserve-llmisvc-crd", "kserve-llmisvc-resources"}
