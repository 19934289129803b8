"""The serving layer (roles cert_manager and kserve) against the lab's real API server, with the real charts and
controllers: cert-manager issues the KServe webhook's serving certificate, KServe's webhooks default and
validate every InferenceService, and the KServe controller turns each InferenceService into its predictor
Deployment and reports it Ready. The predictor pods are KWOK's (no vLLM runs; the GPUs are simulated).
"""
import copy
import time
import uuid

import pytest
import yaml

from lab_helpers import ensure_gpu_layer, require_cert_manager_group, wait_for
from playbook import LAB_CONFIG, ansible_playbook

ISVC = ("serving.kserve.io", "v1beta1", "inferenceservices")
RUNTIME = ("serving.kserve.io", "v1alpha1", "clusterservingruntimes")


def _write(tmp, config, name="config.yml"):
    path = tmp / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def serving(lab, tmp_path_factory):
    """Two models: an 8B model on one (time-sliced) L40S from hf:// with a token and a cache PVC, and a 1.5B model
    on one H100 1g.10gb MIG slice from s3:// with credentials; Kueue on, so both run in team namespaces."""
    suffix = uuid.uuid4().hex[:4]
    with open(LAB_CONFIG) as handle:
        config = yaml.safe_load(handle)
    cluster = "ksv-%s" % suffix
    research, inference = "ksv%s-research" % suffix, "ksv%s-inference" % suffix
    config["cluster"]["name"] = cluster
    config["teams"] = [{"name": research, "quotas": {"h100": {"nvidia.com/mig-1g.10gb": 8}}},
                       {"name": inference, "quotas": {"l40s": {"nvidia.com/gpu": 4}}}]
    models = [
        {"name": "llama-8b", "namespace": inference, "storage_uri": "hf://meta-llama/Llama-3.1-8B-Instruct",
         "pool": "l40s", "gpu_resource": "nvidia.com/gpu", "gpus": 1, "tensor_parallel_size": 1,
         "parameters_billion": 8, "dtype": "bfloat16", "max_model_len": 8192, "min_replicas": 1, "max_replicas": 2,
         "credentials": {"var": "vault_hf_token"}, "cache": {"size": "50Gi"},
         "engine_args": ["--max-num-seqs=64"]},
        {"name": "qwen-small", "namespace": research, "storage_uri": "s3://models/qwen2.5-1.5b-instruct",
         "pool": "h100", "gpu_resource": "nvidia.com/mig-1g.10gb", "gpus": 1, "tensor_parallel_size": 1,
         "parameters_billion": 1.5, "dtype": "bfloat16", "max_model_len": 4096, "min_replicas": 1,
         "max_replicas": 1, "credentials": {"var": "vault_s3_credentials"}},
    ]
    config["services"] = {
        # cert-manager and KServe are the cluster's, installed once in their default namespaces as on a real
        # cluster (their CRDs, webhooks and cluster roles are cluster-wide); each test isolates its teams and models
        "cert_manager": {"enabled": True},
        "gpu_operator": {"enabled": True}, "monitoring": {"enabled": False},
        "kueue": {"enabled": True, "integrations": ["batch/job", "deployment"]},
        "kserve": {"enabled": True, "engine_args": ["--enable-prefix-caching"],
                   "models": models},
    }
    config.pop("secrets", None)
    ensure_gpu_layer(lab, ansible_playbook)  # qwen-small asks an H100 1g.10gb MIG slice
    tmp = tmp_path_factory.mktemp("serving")
    secrets = _write(tmp, {"vault_hf_token": "hf_lab_%s" % uuid.uuid4().hex,
                           "vault_s3_credentials": {"access_key_id": "LAB%s" % suffix.upper(),
                                                    "secret_access_key": uuid.uuid4().hex,
                                                    "endpoint": "minio.lab.invalid:9000", "region": "lab-1"}},
                     "secrets.yml")
    state = {"config": config, "path": _write(tmp, config), "tmp": tmp, "cluster": cluster, "suffix": suffix,
             "teams": (research, inference), "runtime": "ksv%s-vllm" % suffix,
             "args": ("-e", "@%s" % secrets, "-e", "kserve_runtime_name=ksv%s-vllm" % suffix)}
    yield state
    _cleanup(lab, state)


def _cleanup(lab, state):
    selector = "app.kubernetes.io/managed-by=gpufleet,gpufleet.io/cluster=%s" % state["cluster"]
    for obj in lab.custom.list_cluster_custom_object(*ISVC, label_selector=selector)["items"]:
        lab.custom.delete_namespaced_custom_object(ISVC[0], ISVC[1], obj["metadata"]["namespace"], ISVC[2],
                                                   obj["metadata"]["name"])
    for obj in lab.custom.list_cluster_custom_object(*RUNTIME, label_selector=selector)["items"]:
        lab.custom.delete_cluster_custom_object(*RUNTIME, obj["metadata"]["name"])
    for ns in state["teams"]:
        try:
            lab.core.delete_namespace(ns)
        except Exception:  # noqa: BLE001 - already gone
            pass


def _playbook(state, path=None, *args, **kwargs):
    return ansible_playbook("playbooks/serving.yml", *(state["args"] + args), config=path or state["path"], **kwargs)


def _isvcs(lab, cluster):
    items = lab.custom.list_cluster_custom_object(*ISVC, label_selector="gpufleet.io/cluster=%s" % cluster)["items"]
    return {o["metadata"]["name"]: o for o in items}


def test_converge_idempotent_check(lab, serving):
    first = _playbook(serving)
    assert first.rc == 0, first
    assert first.changed > 0, first
    assert "hf_lab_" not in first.stdout and serving["config"]["services"]["kserve"]["models"][1]["name"]
    second = _playbook(serving)
    assert second.rc == 0, second
    assert second.changed == 0, second.changed_tasks()
    check = _playbook(serving, check=True, diff=True)
    assert check.rc == 0, check
    assert check.changed == 0, check.changed_tasks()
    assert "hf_lab_" not in second.stdout + check.stdout


def test_runtime_and_inference_services_match_config(lab, serving):
    research, inference = serving["teams"]
    runtime = lab.custom.get_cluster_custom_object(*RUNTIME, serving["runtime"])
    container = runtime["spec"]["containers"][0]
    assert container["image"] == "registry.invalid/gpufleet-lab/vllm/vllm-openai:v0.24.0"  # the air-gap mirror
    assert container["args"] == ["--port=8080", "--model=/mnt/models", "--enable-prefix-caching"]
    assert {"name": "devshm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    assert runtime["spec"]["volumes"] == [{"name": "devshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}}]
    isvcs = _isvcs(lab, serving["cluster"])
    assert sorted(isvcs) == ["llama-8b", "qwen-small"]
    llama, qwen = isvcs["llama-8b"], isvcs["qwen-small"]
    assert llama["metadata"]["namespace"] == inference and qwen["metadata"]["namespace"] == research
    for isvc in (llama, qwen):
        assert isvc["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "default"
        assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
        assert isvc["spec"]["predictor"]["model"]["runtime"] == serving["runtime"]
    model = llama["spec"]["predictor"]["model"]
    assert model["storageUri"] == "hf://meta-llama/Llama-3.1-8B-Instruct"
    assert model["args"] == ["--served-model-name=llama-8b", "--tensor-parallel-size=1", "--max-model-len=8192",
                             "--dtype=bfloat16", "--gpu-memory-utilization=0.9", "--max-num-seqs=64"]
    assert model["resources"] == {"requests": {"cpu": "4", "memory": "32Gi", "nvidia.com/gpu": "1"},
                                  "limits": {"memory": "32Gi", "nvidia.com/gpu": "1"}}
    assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "llama-8b-hf-token", "key": "HF_TOKEN"}}} \
        in model["env"]
    predictor = llama["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 2)
    assert predictor["nodeSelector"] == {"gpufleet.io/pool": "l40s"}
    assert predictor["volumes"] == [{"name": "model-cache", "persistentVolumeClaim": {"claimName": "llama-8b-cache"}}]
    pvc = lab.core.read_namespaced_persistent_volume_claim("llama-8b-cache", inference)
    assert pvc.spec.resources.requests == {"storage": "50Gi"}
    qmodel = qwen["spec"]["predictor"]["model"]
    assert qmodel["storageUri"] == "s3://models/qwen2.5-1.5b-instruct"
    assert qmodel["resources"]["limits"] == {"memory": "32Gi", "nvidia.com/mig-1g.10gb": "1"}
    assert "--max-model-len=4096" in qmodel["args"]
    assert qwen["spec"]["predictor"]["serviceAccountName"] == "qwen-small-storage"
    account = lab.core.read_namespaced_service_account("qwen-small-storage", research)
    assert [s.name for s in account.secrets] == ["qwen-small-storage"]
    secret = lab.core.read_namespaced_secret("qwen-small-storage", research)
    assert sorted(secret.data) == ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    assert secret.metadata.annotations["serving.kserve.io/s3-endpoint"] == "minio.lab.invalid:9000"
    assert lab.core.read_namespaced_secret("llama-8b-hf-token", inference).data["HF_TOKEN"]


def test_kserve_controller_makes_the_predictor_on_the_models_pool(lab, serving):
    """What a team relies on: the real KServe controller turns qwen-small into a predictor Deployment owned by the
    InferenceService, its pod lands on an H100 node of the model's pool with the model's MIG slice and the pool's
    tolerations, and the InferenceService reports Ready (set by the controller, not the role)."""
    require_cert_manager_group()
    research = serving["teams"][0]
    deadline, isvc, pods = time.time() + 180, None, []
    while time.time() < deadline:
        isvc = lab.custom.get_namespaced_custom_object(ISVC[0], ISVC[1], research, ISVC[2], "qwen-small")
        ready = [c for c in (isvc.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"]
        pods = lab.core.list_namespaced_pod(
            research, label_selector="serving.kserve.io/inferenceservice=qwen-small").items
        if ready and ready[0]["status"] == "True" and pods and pods[0].spec.node_name:
            break
        time.sleep(2)
    assert ready and ready[0]["status"] == "True", isvc.get("status")
    # the KServe webhook's serving certificate, issued by the real cert-manager
    cert = lab.custom.get_namespaced_custom_object("cert-manager.io", "v1", "kserve", "certificates", "serving-cert")
    assert [c["status"] for c in cert["status"]["conditions"] if c["type"] == "Ready"] == ["True"], cert.get("status")
    deploy = lab.apps.read_namespaced_deployment("qwen-small-predictor", research)
    assert [(o.kind, o.name) for o in deploy.metadata.owner_references] == [("InferenceService", "qwen-small")]
    assert pods and pods[0].spec.node_name.startswith("lab-h100-"), [(p.metadata.name, p.spec.node_name) for p in pods]
    container = next(c for c in pods[0].spec.containers if c.name == "kserve-container")
    assert container.resources.limits["nvidia.com/mig-1g.10gb"] == "1"
    predictor = isvc["spec"]["predictor"]
    tolerations = {(t.key, t.effect) for t in pods[0].spec.tolerations or []}
    assert {(t["key"], t.get("effect")) for t in predictor.get("tolerations") or []} <= tolerations
    assert pods[0].spec.node_selector.get("gpufleet.io/pool") == "h100"


def test_removing_a_model_removes_it(lab, serving):
    config = copy.deepcopy(serving["config"])
    config["services"]["kserve"]["models"] = config["services"]["kserve"]["models"][:1]
    path = _write(serving["tmp"], config, "one-model.yml")
    check = _playbook(serving, path, check=True, diff=True)
    assert check.rc == 0, check
    assert "qwen-small" in _isvcs(lab, serving["cluster"])  # check mode deleted nothing
    result = _playbook(serving, path, "--tags", "kserve_preflight,kserve_configure")
    assert result.rc == 0, result
    assert result.changed > 0, result
    assert sorted(_isvcs(lab, serving["cluster"])) == ["llama-8b"]  # gone when the run ends (the role waits)
    research = serving["teams"][0]
    # and so is what the KServe controller made for it: the predictor Deployment and its pods
    selector = "serving.kserve.io/inferenceservice=qwen-small"
    wait_for(lambda: not lab.apps.list_namespaced_deployment(research, label_selector=selector).items
             and not lab.core.list_namespaced_pod(research, label_selector=selector).items,
             timeout=120, what="qwen-small's predictor Deployment and pods gone")
    assert [s.metadata.name for s in lab.core.list_namespaced_secret(
        research, label_selector="gpufleet.io/model=qwen-small").items] == []
    assert [a.metadata.name for a in lab.core.list_namespaced_service_account(
        research, label_selector="gpufleet.io/model=qwen-small").items] == []


@pytest.mark.parametrize("change,expected", [
    ({"tensor_parallel_size": 2}, "services.kserve.models[0].tensor_parallel_size: must equal gpus (1)"),
    ({"storage_uri": "gs://bucket/llama"}, "services.kserve.models[0].storage_uri: must be an hf://, pvc:// or s3:// URI"),
    ({"pool": "h100", "gpu_resource": "nvidia.com/mig-1g.10gb", "parameters_billion": 70, "dtype": "float16"},
     "services.kserve.models[0].gpu_resource: the model does not fit: 70B parameters in float16"),
    ({"namespace": "not-a-team"}, "services.kserve.models[0].namespace: with Kueue on, a model runs in a team's"),
])
def test_bad_input_fails_in_validation(lab, serving, change, expected):
    config = copy.deepcopy(serving["config"])
    config["services"]["kserve"]["models"][0].update(change)
    before = _isvcs(lab, serving["cluster"])
    result = _playbook(serving, _write(serving["tmp"], config, "bad.yml"))
    assert result.rc != 0, result
    assert expected in result.stdout, result
    assert "Validate config.yml" in result.stdout and result.changed == 0
    assert "gpufleet.platform.kserve" not in result.stdout  # stopped before any role ran
    assert _isvcs(lab, serving["cluster"]).keys() == before.keys()


# LLMInferenceService (services.kserve.llmisvc): the llmisvc charts (stand-ins) and the objects, validated by the
# unmodified upstream CRD (serving.kserve.io, v1alpha2 storage version). No llmisvc controller runs in the lab
# either: the objects get no status and no workloads.
LLMISVC = ("serving.kserve.io", "v1alpha2", "llminferenceservices")


@pytest.fixture(scope="module")
def llm_serving(lab, tmp_path_factory):
    """An LLMInferenceService (1.5B model on one H100 1g.10gb MIG slice from hf:// with a token and a cache PVC,
    two replicas) next to an InferenceService (8B on one L40S); Kueue on, so both in team namespaces."""
    suffix = uuid.uuid4().hex[:4]
    with open(LAB_CONFIG) as handle:
        config = yaml.safe_load(handle)
    cluster = "ksl-%s" % suffix
    research, inference = "ksl%s-research" % suffix, "ksl%s-inference" % suffix
    config["cluster"]["name"] = cluster
    config["teams"] = [{"name": research, "quotas": {"h100": {"nvidia.com/mig-1g.10gb": 8}}},
                       {"name": inference, "quotas": {"l40s": {"nvidia.com/gpu": 4}}}]
    models = [
        {"name": "qwen-llm", "kind": "LLMInferenceService", "namespace": research,
         "storage_uri": "hf://Qwen/Qwen2.5-1.5B-Instruct", "pool": "h100", "gpu_resource": "nvidia.com/mig-1g.10gb",
         "gpus": 1, "tensor_parallel_size": 1, "parameters_billion": 1.5, "max_model_len": 4096, "replicas": 2,
         "credentials": {"var": "vault_hf_token"}, "cache": {"size": "20Gi"}, "engine_args": ["--max-num-seqs=32"]},
        {"name": "llama-8b", "namespace": inference, "storage_uri": "hf://meta-llama/Llama-3.1-8B-Instruct",
         "pool": "l40s", "gpu_resource": "nvidia.com/gpu", "gpus": 1, "tensor_parallel_size": 1,
         "parameters_billion": 8, "max_model_len": 8192},
    ]
    config["services"] = {
        "cert_manager": {"enabled": True},
        "gpu_operator": {"enabled": True}, "monitoring": {"enabled": False},
        "kueue": {"enabled": True, "integrations": ["batch/job", "deployment"]},
        "kserve": {"enabled": True, "llmisvc": True,
                   "engine_args": ["--enable-prefix-caching"], "models": models},
    }
    config.pop("secrets", None)
    tmp = tmp_path_factory.mktemp("llm-serving")
    secrets = _write(tmp, {"vault_hf_token": "hf_lab_%s" % uuid.uuid4().hex}, "secrets.yml")
    state = {"config": config, "path": _write(tmp, config), "tmp": tmp, "cluster": cluster, "suffix": suffix,
             "teams": (research, inference), "kserve_namespace": "kserve",
             "args": ("-e", "@%s" % secrets, "-e", "kserve_runtime_name=ksl%s-vllm" % suffix)}
    yield state
    selector = "app.kubernetes.io/managed-by=gpufleet,gpufleet.io/cluster=%s" % cluster
    for obj in lab.custom.list_cluster_custom_object(*LLMISVC, label_selector=selector)["items"]:
        lab.custom.delete_namespaced_custom_object(LLMISVC[0], LLMISVC[1], obj["metadata"]["namespace"], LLMISVC[2],
                                                   obj["metadata"]["name"])
    _cleanup(lab, dict(state, teams=(research, inference)))


def _llmisvcs(lab, cluster):
    items = lab.custom.list_cluster_custom_object(*LLMISVC, label_selector="gpufleet.io/cluster=%s" % cluster)["items"]
    return {o["metadata"]["name"]: o for o in items}


def test_llmisvc_converge_idempotent_check(lab, llm_serving):
    first = _playbook(llm_serving)
    assert first.rc == 0, first
    assert first.changed > 0, first
    second = _playbook(llm_serving)
    assert second.rc == 0, second
    assert second.changed == 0, second.changed_tasks()
    check = _playbook(llm_serving, check=True, diff=True)
    assert check.rc == 0, check
    assert check.changed == 0, check.changed_tasks()
    assert "hf_lab_" not in first.stdout + second.stdout + check.stdout
    namespace = llm_serving["kserve_namespace"]
    releases = {s.metadata.labels["name"] for s in lab.core.list_namespaced_secret(
        namespace, label_selector="owner=helm,status=deployed").items}
    assert {"kserve-crd", "kserve-llmisvc-crd", "kserve-resources", "kserve-llmisvc-resources",
            "kserve-runtime-configs"} <= releases
    assert lab.apps.read_namespaced_deployment("llmisvc-controller-manager", namespace)


def test_llm_inference_service_matches_config(lab, llm_serving):
    research, inference = llm_serving["teams"]
    llms = _llmisvcs(lab, llm_serving["cluster"])
    assert sorted(llms) == ["qwen-llm"]
    assert sorted(_isvcs(lab, llm_serving["cluster"])) == ["llama-8b"]  # the other kind stays an InferenceService
    llm = llms["qwen-llm"]
    assert llm["apiVersion"] == "serving.kserve.io/v1alpha2" and llm["metadata"]["namespace"] == research
    labels = llm["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "gpufleet" and labels["kueue.x-k8s.io/queue-name"] == "default"
    spec = llm["spec"]
    assert spec["model"] == {"uri": "hf://Qwen/Qwen2.5-1.5B-Instruct", "name": "qwen-llm"}
    assert spec["replicas"] == 2 and spec["parallelism"] == {"tensor": 1}
    assert spec["labels"] == {"kueue.x-k8s.io/queue-name": "default"}
    template = spec["template"]
    assert template["nodeSelector"] == {"gpufleet.io/pool": "h100"}
    assert template["volumes"] == [{"name": "model-cache", "persistentVolumeClaim": {"claimName": "qwen-llm-cache"}}]
    (main,) = template["containers"]
    assert main["name"] == "main"
    assert main["args"] == ["--enable-prefix-caching", "--max-model-len=4096", "--dtype=bfloat16",
                            "--gpu-memory-utilization=0.9", "--max-num-seqs=32"]
    assert main["resources"] == {"requests": {"cpu": "4", "memory": "32Gi", "nvidia.com/mig-1g.10gb": "1"},
                                 "limits": {"memory": "32Gi", "nvidia.com/mig-1g.10gb": "1"}}
    assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "qwen-llm-hf-token", "key": "HF_TOKEN"}}} \
        in main["env"]
    assert lab.core.read_namespaced_secret("qwen-llm-hf-token", research).data["HF_TOKEN"]
    assert lab.core.read_namespaced_persistent_volume_claim("qwen-llm-cache", research).spec.resources.requests == \
        {"storage": "20Gi"}


def test_removing_an_llm_inference_service_removes_it(lab, llm_serving):
    config = copy.deepcopy(llm_serving["config"])
    config["services"]["kserve"]["models"] = config["services"]["kserve"]["models"][1:]
    path = _write(llm_serving["tmp"], config, "no-llm.yml")
    check = _playbook(llm_serving, path, check=True, diff=True)
    assert check.rc == 0, check
    assert "qwen-llm" in _llmisvcs(lab, llm_serving["cluster"])  # check mode deleted nothing
    result = _playbook(llm_serving, path, "--tags", "kserve_preflight,kserve_configure")
    assert result.rc == 0, result
    assert result.changed > 0, result
    assert _llmisvcs(lab, llm_serving["cluster"]) == {}
    assert sorted(_isvcs(lab, llm_serving["cluster"])) == ["llama-8b"]
    research = llm_serving["teams"][0]
    assert [s.metadata.name for s in lab.core.list_namespaced_secret(
        research, label_selector="gpufleet.io/model=qwen-llm").items] == []
    again = _playbook(llm_serving, path, "--tags", "kserve_preflight,kserve_configure")
    assert again.rc == 0 and again.changed == 0, again.changed_tasks()


def test_llm_inference_service_without_llmisvc_fails_in_validation(lab, llm_serving):
    config = copy.deepcopy(llm_serving["config"])
    config["services"]["kserve"]["llmisvc"] = False
    result = _playbook(llm_serving, _write(llm_serving["tmp"], config, "no-llmisvc.yml"))
    assert result.rc != 0, result
    assert "services.kserve.models[0].kind: an LLMInferenceService needs services.kserve.llmisvc: true" \
        in result.stdout, result
    assert "gpufleet.platform.kserve" not in result.stdout and result.changed == 0


def test_cert_managers_webhook_refuses_an_invalid_certificate(lab, serving):
    """cert-manager runs for real: its validating webhook (reached through the lab's egress proxy, TLS with the
    CA its cainjector injected) refuses a Certificate that names no identity, which the CRD schema allows."""
    require_cert_manager_group()
    from kubernetes.client.rest import ApiException
    research = serving["teams"][0]
    body = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "no-identity"},
            "spec": {"secretName": "no-identity", "issuerRef": {"name": "nobody", "kind": "Issuer"}}}
    with pytest.raises(ApiException) as err:
        lab.custom.create_namespaced_custom_object("cert-manager.io", "v1", research, "certificates", body)
    assert "webhook.cert-manager.io" in err.value.body and "denied the request" in err.value.body, err.value.body
