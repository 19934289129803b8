"""Model serving logic (module_utils/serving.py) and the services.kserve rules of config validation."""
import copy
import os

import pytest
import yaml

from ansible_collections.gpufleet.platform.plugins.module_utils import config_plan, serving, versions
from ansible_collections.gpufleet.platform.plugins.module_utils.config_issues import ConfigValidationError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
GIB = 1024


@pytest.mark.parametrize("params,dtype,gib", [
    (8, "bfloat16", 14.9), (8, "float32", 29.8), (70, "float16", 130.4), (70, "fp8", 65.2), (70, "int4", 32.6),
])
def test_weights(params, dtype, gib):
    assert round(serving.weights_mib(params, dtype) / GIB, 1) == gib


def test_required_adds_kv_cache_share():
    assert serving.required_mib(8, "bfloat16", 0.5) == pytest.approx(serving.weights_mib(8, "bfloat16") * 1.5)
    with pytest.raises(serving.ServingError, match="kv_cache_share"):
        serving.required_mib(8, "bfloat16", -1)
    with pytest.raises(serving.ServingError, match="unknown dtype 'fp4'"):
        serving.weights_mib(8, "fp4")


@pytest.mark.parametrize("model,resource,mib", [
    ("h100-sxm5-80gb", "nvidia.com/gpu", 81559),
    ("h100-sxm5-80gb", "nvidia.com/mig-1g.10gb", 81559 / 8.0),
    ("h100-sxm5-80gb", "nvidia.com/mig-1g.10gb.me", 81559 / 8.0),
    ("h100-sxm5-80gb", "nvidia.com/mig-3g.40gb", 81559 * 4 / 8.0),
    ("l40s", "nvidia.com/gpu.shared", 46068),
    ("h100-sxm5-80gb", "nvidia.com/mig-9g.99gb", None),
    ("l40s", "example.com/fpga", None),
])
def test_device_memory(model, resource, mib):
    assert serving.device_memory_mib(model, resource) == mib


@pytest.mark.parametrize("uri,scheme", [("hf://org/m", "hf"), ("pvc://claim/path", "pvc"), ("s3://b/p", "s3")])
def test_storage_scheme(uri, scheme):
    assert serving.storage_scheme(uri) == scheme


@pytest.mark.parametrize("uri", ["gs://b/p", "hf://", "org/model", "", None])
def test_storage_scheme_refused(uri):
    with pytest.raises(serving.ServingError, match="the scheme must be one of hf://, pvc://, s3://"):
        serving.storage_scheme(uri)


POOLS = {
    "a100": {"model": "a100-sxm4-80gb", "resources_per_node": {"nvidia.com/gpu": 8}},
    "h100": {"model": "h100-sxm5-80gb", "resources_per_node": {"nvidia.com/mig-1g.10gb": 56}},
    "l40s": {"model": "l40s", "resources_per_node": {"nvidia.com/gpu": 16}, "shared": True},
}


def test_fit_candidates_smallest_first_and_one_device_on_mig_or_shared():
    small = serving.fit_candidates(POOLS, 5 * GIB, 0.9)
    assert [(c["pool"], c["resource"], c["count"]) for c in small] == [
        ("h100", "nvidia.com/mig-1g.10gb", 1), ("l40s", "nvidia.com/gpu", 1), ("a100", "nvidia.com/gpu", 1)]
    # 156.5 GiB: never several MIG devices or time-sliced replicas; power-of-two tensor parallel sizes
    big = serving.fit_candidates(POOLS, serving.required_mib(70, "float16", 0.2), 0.9)
    assert [(c["pool"], c["resource"], c["count"]) for c in big] == [("a100", "nvidia.com/gpu", 4)]


def test_check_fit_70b_on_a_1g_slice_names_the_smallest_fit():
    model = {"pool": "h100", "gpu_resource": "nvidia.com/mig-1g.10gb", "gpus": 1, "parameters_billion": 70,
             "dtype": "float16"}
    message = serving.check_fit(model, POOLS, 0.2, 0.9)
    assert message.startswith("70B parameters in float16 need about 156.5 GiB of GPU memory (130.4 GiB weights + 20% "
                              "KV cache, services.kserve.kv_cache_share), but 1 x nvidia.com/mig-1g.10gb gives 9.0 "
                              "GiB usable")
    assert message.endswith("smallest placement that fits: pool 'a100' nvidia.com/gpu with gpus: 4 and "
                            "tensor_parallel_size: 4 (4 x 80.0 GiB)")


def test_check_fit_passes_and_skips_unknown():
    assert serving.check_fit({"pool": "a100", "gpus": 1, "parameters_billion": 8}, POOLS) is None
    assert serving.check_fit({"pool": "a100", "gpus": 1}, POOLS) is None  # no size declared
    assert serving.check_fit({"pool": "x", "gpus": 1, "parameters_billion": 800}, POOLS) is None
    none_fit = serving.check_fit({"pool": "h100", "gpu_resource": "nvidia.com/mig-1g.10gb", "gpus": 1,
                                  "parameters_billion": 2000}, POOLS)
    assert "no pool offers enough GPU memory on one node" in none_fit


def test_shared_gpu_counts_once():
    message = serving.check_fit({"pool": "l40s", "gpus": 2, "parameters_billion": 30, "dtype": "bfloat16"}, POOLS)
    assert "a shared GPU counts once" in message


def test_vllm_args_and_plan_models():
    service = {"gpu_memory_utilization": 0.85, "kv_cache_share": 0.2, "models": [
        {"name": "a", "storage_uri": "hf://o/a", "gpus": 2, "max_model_len": 4096, "dtype": "float16",
         "parameters_billion": 8, "engine_args": ["--enable-prefix-caching"]},
        {"name": "b", "storage_uri": "s3://b/p", "dtype": "int4"}]}
    planned = serving.plan_models(service)
    a, b = planned["models"]
    assert a["args"] == ["--tensor-parallel-size=2", "--max-model-len=4096", "--dtype=float16",
                         "--gpu-memory-utilization=0.85", "--enable-prefix-caching"]
    assert (a["tensor_parallel_size"], a["min_replicas"], a["max_replicas"], a["scheme"]) == (2, 1, 1, "hf")
    assert a["memory_estimate_mib"] == 18311
    assert b["args"] == ["--tensor-parallel-size=1", "--gpu-memory-utilization=0.85"]  # int4: no --dtype
    assert "memory_estimate_mib" not in b and b["scheme"] == "s3"
    assert planned["vllm_image"] == versions.IMAGES["vllm"]


# ---- config rules (services.kserve) ---------------------------------------------------------------------------

@pytest.fixture()
def example():
    with open(os.path.join(ROOT, "config.example.yml")) as handle:
        config = yaml.safe_load(handle)
    config["services"]["kserve"]["enabled"] = True
    return config


def issues(config):
    with pytest.raises(ConfigValidationError) as err:
        config_plan.validate(copy.deepcopy(config))
    return [str(i) for i in err.value.issues]


def model(config, **changes):
    config["services"]["kserve"]["models"][0].update(changes)
    return config


def test_example_with_kserve_is_valid_and_planned(example):
    plan = config_plan.validate(example)
    planned = plan["services"]["kserve"]["models"][0]
    assert planned["args"][:2] == ["--tensor-parallel-size=1", "--max-model-len=8192"]
    assert plan["services"]["kserve"]["vllm_image"] == versions.IMAGES["vllm"]


@pytest.mark.parametrize("changes,expected", [
    ({"tensor_parallel_size": 2},
     "services.kserve.models[0].tensor_parallel_size: must equal gpus (1): vLLM shards the model over every GPU it "
     "is given (got 2)"),
    ({"storage_uri": "gs://bucket/llama"},
     "services.kserve.models[0].storage_uri: must be an hf://, pvc:// or s3:// URI (hf://org/model, "
     "pvc://claim/path, s3://bucket/path) (got 'gs://bucket/llama')"),
    ({"namespace": "nobody"},
     "services.kserve.models[0].namespace: with Kueue on, a model runs in a team's namespace so it counts against "
     "that team's quota; team namespaces: interns, research, serving (got 'nobody')"),
    ({"pool": "h100-mig", "gpu_resource": "nvidia.com/mig-1g.10gb", "parameters_billion": 70, "dtype": "float16",
      "namespace": "research"},
     "services.kserve.models[0].gpu_resource: the model does not fit: 70B parameters in float16 need about 156.5 GiB "
     "of GPU memory (130.4 GiB weights + 20% KV cache, services.kserve.kv_cache_share), but 1 x "
     "nvidia.com/mig-1g.10gb gives 9.0 GiB usable (1 x 10.0 GiB x gpu_memory_utilization 0.9); smallest placement "
     "that fits: pool 'a100' nvidia.com/gpu with gpus: 4 and tensor_parallel_size: 4 (4 x 80.0 GiB) "
     "(got 'nvidia.com/mig-1g.10gb')"),
    ({"pool": "h100-mig", "gpu_resource": "nvidia.com/mig-3g.40gb", "gpus": 2, "tensor_parallel_size": 2,
      "namespace": "research"},
     "services.kserve.models[0].gpus: a process sees only one MIG device, so vLLM cannot shard over several; ask "
     "for 1 nvidia.com/mig-3g.40gb, or for whole GPUs (nvidia.com/gpu) on a non-MIG pool (got 2)"),
    ({"min_replicas": 0},
     "services.kserve.models[0].min_replicas: scale to zero needs services.kserve.deployment_mode: Knative; "
     "Standard mode keeps at least 1 replica (got 0)"),
    ({"storage_uri": "s3://models/llama", "credentials": {"generate": True}},
     "services.kserve.models[0].credentials: storage credentials come from your store, never generated: reference "
     "a vaulted variable ({var: vault_s3_credentials}) (got a mapping; a secret's value is never shown)"),
    ({"engine_args": ["max-num-seqs=8"]},
     "services.kserve.models[0].engine_args[0]: must be a vLLM flag like --enable-prefix-caching or "
     "--max-num-seqs=64 (got 'max-num-seqs=8')"),
])
def test_bad_models_name_the_key(example, changes, expected):
    assert expected in issues(model(example, **changes))


def test_duplicate_model(example):
    models = example["services"]["kserve"]["models"]
    models.append(dict(models[0]))
    assert any(i.startswith("services.kserve.models[1].name: duplicate model in namespace 'serving'")
               for i in issues(example))


def test_kueue_without_deployment_integration_warns(example):
    assert any("'deployment'" in w for w in config_plan.validate(example)["warnings"])
    example["services"]["kueue"]["integrations"].append("deployment")
    assert not any("'deployment'" in w for w in config_plan.validate(example)["warnings"])
