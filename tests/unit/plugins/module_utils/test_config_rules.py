"""config.yml validation: the schema and every cross-field rule, on good and (mostly) bad input.

Each bad case mutates the shipped config.example.yml and asserts that validation fails and that a
reported problem names the offending key path and says what is wrong.
"""
import copy
import os
import re

import pytest
import yaml

from ansible_collections.gpufleet.platform.plugins.module_utils import config_issues, config_plan
from ansible_collections.gpufleet.platform.plugins.module_utils.config_issues import ConfigValidationError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


def load(path):
    with open(os.path.join(ROOT, path)) as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="module")
def example():
    return load("config.example.yml")


def problems(config, secrets=None):
    with pytest.raises(ConfigValidationError) as info:
        config_plan.validate(config, secret_values=secrets)
    return info.value


# ----------------------------------------------------------------------------------------------
# Good configs
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["config.example.yml", "inventories/example/config.yml", "inventories/lab/config.yml"])
def test_shipped_configs_are_valid(path):
    if not os.path.exists(os.path.join(ROOT, path)):
        pytest.skip("%s not in this checkout" % path)
    plan = config_plan.validate(load(path))
    assert plan["nodes"]


def test_plan_of_example(example):
    plan = config_plan.validate(copy.deepcopy(example))
    pools = plan["pools"]
    assert pools["a100"]["capacity"] == {"nvidia.com/gpu": 16}
    # H100 with 3g.40gb + 2g.20gb + 2 x 1g.10gb on each of 8 GPUs, one node
    assert pools["h100-mig"]["resources_per_node"] == {
        "nvidia.com/mig-3g.40gb": 8, "nvidia.com/mig-2g.20gb": 8, "nvidia.com/mig-1g.10gb": 16}
    assert pools["h100-mig"]["mig"]["enabled"] is True
    assert re.fullmatch(r"gpufleet-h100-mig-[0-9a-f]{8}", pools["h100-mig"]["mig"]["config_name"])  # layout hash
    # L40S time-sliced 4 ways: 4 GPUs x 4 replicas
    assert pools["l40s"]["capacity"] == {"nvidia.com/gpu": 16}
    assert pools["l40s"]["catalog"]["gfd_product"] == "NVIDIA-L40S"
    assert plan["teams"][1]["namespace"] == "serving"
    assert plan["teams"][0]["quotas"]["a100"]["nvidia.com/gpu"] == {"nominal": 12, "borrowing_limit": 4, "lending_limit": 4}
    assert plan["kubespray"]["kube_version"] == "1.35.4"
    assert plan["kubespray"]["kube_pods_subnet"] == "10.233.64.0/18"
    gpu_operator = plan["services"]["gpu_operator"]["charts"][0]
    assert gpu_operator == {"name": "gpu-operator", "version": "v26.7.0", "namespace": "gpu-operator",
                            "source": "repo", "ref": "gpu-operator", "repo_url": "https://helm.ngc.nvidia.com/nvidia"}


def test_defaults_are_filled(example):
    config = {"cluster": {"name": "tiny"}, "nodes": [{"name": "n1", "address": "192.0.2.1",
                                                      "roles": ["control-plane", "etcd", "worker"]}]}
    plan = config_plan.validate(config)
    assert plan["cluster"]["kubernetes_version"] == "1.35.4"
    assert plan["cluster"]["network_plugin"] == "calico"
    assert plan["services"]["gpu_operator"]["enabled"] is True
    assert plan["services"]["kueue"]["enabled"] is False
    assert plan["scheduling"]["allow_overcommit"] is False


def test_volcano_hierarchy_a_parent_covers_is_valid(example):
    config = copy.deepcopy(example)
    config["services"]["volcano"].update(enabled=True, scheduler_plugins=["gang", "capacity"])
    config["teams"][1]["quotas"] = {"h100-mig": {"nvidia.com/mig-1g.10gb": {"nominal": 4, "borrowing_limit": 4}}}
    config["teams"][0]["quotas"]["h100-mig"]["nvidia.com/mig-1g.10gb"] = {"nominal": 4, "borrowing_limit": 8}
    config_plan.validate(config)


def test_overcommit_allowed_when_declared(example):
    config = copy.deepcopy(example)
    config["teams"][2]["quotas"]["a100"]["nvidia.com/gpu"] = 40
    config["scheduling"]["allow_overcommit"] = True
    config_plan.validate(config)


def test_all_errors_reported_at_once(example):
    config = copy.deepcopy(example)
    config["clustr"] = {}
    config["nodes"][1]["name"] = "cp-1"
    config["teams"][1]["name"] = "research"
    config["gpu_pools"]["l40s"]["sharing"]["mode"] = "sliced"
    error = problems(config)
    paths = [issue.path for issue in error.issues]
    assert "clustr" in paths
    assert "nodes[1].name" in paths
    assert "teams[1].name" in paths
    assert "gpu_pools.l40s.sharing.mode" in paths
    assert str(error).startswith("config.yml is invalid (")


def test_air_gap_mirror_resolves_every_chart(example):
    config = copy.deepcopy(example)
    config["airgap"] = {"enabled": True, "chart_mirror": {"type": "local", "location": "/srv/charts"},
                        "image_registry": "registry.example.internal:5000/mirror"}
    plan = config_plan.validate(config)
    charts = [c for s in plan["services"].values() for c in s["charts"]]
    assert all(c["source"] == "local" and c["ref"].startswith("/srv/charts/") for c in charts)
    assert "/srv/charts/kube-prometheus-stack-88.5.3.tgz" in [c["ref"] for c in charts]


def _llm_model(config):
    kserve = config["services"]["kserve"]
    kserve.update(enabled=True, llmisvc=True)
    model = kserve["models"][0]
    model.pop("min_replicas")
    model.pop("max_replicas")
    model.update(kind="LLMInferenceService", replicas=2, engine_args=["--max-num-seqs=64"])
    kserve["engine_args"] = ["--enable-prefix-caching"]
    return config


def test_llmisvc_charts_only_when_enabled(example):
    config = copy.deepcopy(example)
    config["services"]["kserve"]["enabled"] = True
    names = [c["name"] for c in config_plan.validate(config)["services"]["kserve"]["charts"]]
    assert names == ["kserve-crd", "kserve-resources", "kserve-runtime-configs"]
    plan = config_plan.validate(_llm_model(copy.deepcopy(example)))
    charts = plan["services"]["kserve"]["charts"]
    assert [c["name"] for c in charts] == ["kserve-crd", "kserve-llmisvc-crd", "kserve-resources",
                                           "kserve-llmisvc-resources", "kserve-runtime-configs"]
    assert {c["version"] for c in charts} == {"v0.20.0"} and {c["namespace"] for c in charts} == {"kserve"}
    assert charts[1]["ref"] == "oci://ghcr.io/kserve/charts/kserve-llmisvc-crd"


def test_llmisvc_model_plan(example):
    model = config_plan.validate(_llm_model(copy.deepcopy(example)))["services"]["kserve"]["models"][0]
    assert model["kind"] == "LLMInferenceService" and model["replicas"] == 2
    assert "min_replicas" not in model and "max_replicas" not in model
    # KServe's template passes --tensor-parallel-size from spec.parallelism.tensor; service-wide flags first
    assert model["args"] == ["--enable-prefix-caching", "--max-model-len=8192", "--dtype=bfloat16",
                             "--gpu-memory-utilization=0.9", "--max-num-seqs=64"]
    plain = config_plan.validate(example)["services"]["kserve"]["models"][0]
    assert plain["kind"] == "InferenceService" and "replicas" not in plain


def test_service_chart_override(example):
    config = copy.deepcopy(example)
    config["services"]["kueue"]["chart"] = {"source": "local", "path": "/opt/charts/kueue"}
    config["services"]["kueue"]["version"] = "0.19.1"
    plan = config_plan.validate(config)
    assert plan["services"]["kueue"]["charts"] == [{"name": "kueue", "version": "0.19.1", "namespace": "kueue-system",
                                                    "repo_url": None, "source": "local", "ref": "/opt/charts/kueue"}]


def test_secret_reference_checked_against_vars(example):
    config = copy.deepcopy(example)
    config["secrets"]["grafana_admin_password"] = {"var": "vault_grafana"}
    config_plan.validate(config, secret_values={"vault_grafana": "a-long-unique-secret-42"})


# ----------------------------------------------------------------------------------------------
# Bad configs: (id, mutation, key path reported, fragment of the message)
# ----------------------------------------------------------------------------------------------

def _set(path, value):
    def mutate(config):
        node = config
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return mutate


def _delete(path):
    def mutate(config):
        node = config
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return mutate


def _append(path, value):
    def mutate(config):
        node = config
        for key in path:
            node = node[key]
        node.append(value)
    return mutate


def _rename_pool(old, new):
    def mutate(config):
        config["gpu_pools"][new] = config["gpu_pools"].pop(old)
        for node in config["nodes"]:
            if node.get("pool") == old:
                node["pool"] = new
        for team in config.get("teams") or []:
            if old in (team.get("quotas") or {}):
                team["quotas"][new] = team["quotas"].pop(old)
    return mutate


def _all(*mutations):
    def mutate(config):
        for m in mutations:
            m(config)
    return mutate


BAD = [
    # --- schema: unknown keys (with the closest key suggested), types, enums, patterns ---
    ("unknown-top-level", _set(["clustr"], {}), "clustr", "did you mean 'cluster'"),
    ("driver-versions-differ", lambda c: (c["gpu_pools"]["a100"]["driver"].update(version="580.105.08"),
                                          c["gpu_pools"]["h100-mig"]["driver"].update(version="595.91.07")),
     "gpu_pools.h100-mig.driver.version", "installs one driver version"),
    ("mig-strategies-differ", _set(["gpu_pools", "a100", "mig"], {"strategy": "single", "layout": "all-disabled"}),
     "gpu_pools.h100-mig.mig.strategy", "one MIG strategy for the cluster"),
    ("unknown-node-key", _set(["nodes", 0, "adress"], "x"), "nodes[0].adress", "did you mean 'address'"),
    ("unknown-pool-key", _set(["gpu_pools", "a100", "gpus"], 8), "gpu_pools.a100.gpus", "allowed keys"),
    ("unknown-service", _set(["services", "kserv"], {}), "services.kserv", "did you mean 'kserve'"),
    ("unknown-mig-key", _set(["gpu_pools", "h100-mig", "mig", "layuot"], "x"), "gpu_pools.h100-mig.mig.layuot",
     "did you mean 'layout'"),
    ("missing-cluster", _delete(["cluster"]), "cluster", "required key is missing"),
    ("missing-cluster-name", _delete(["cluster", "name"]), "cluster.name", "required key is missing"),
    ("missing-node-address", _delete(["nodes", 2, "address"]), "nodes[2].address", "required key is missing"),
    ("missing-gpus-per-node", _delete(["gpu_pools", "l40s", "gpus_per_node"]), "gpu_pools.l40s.gpus_per_node",
     "required key is missing"),
    ("cluster-name-not-dns", _set(["cluster", "name"], "GPU_Fleet"), "cluster.name", "DNS-1123 label"),
    ("bad-kubernetes-version-format", _set(["cluster", "kubernetes_version"], "v1.35"), "cluster.kubernetes_version",
     "a Kubernetes version like 1.35.4"),
    ("bad-runtime", _set(["cluster", "container_runtime"], "docker"), "cluster.container_runtime", "must be one of"),
    ("bad-network-plugin", _set(["cluster", "network_plugin"], "weave"), "cluster.network_plugin", "must be one of"),
    ("gpus-per-node-string", _set(["gpu_pools", "a100", "gpus_per_node"], "8"), "gpu_pools.a100.gpus_per_node",
     "must be an integer"),
    ("gpus-per-node-zero", _set(["gpu_pools", "a100", "gpus_per_node"], 0), "gpu_pools.a100.gpus_per_node",
     "between 1 and 16"),
    ("bad-node-role", _set(["nodes", 0, "roles"], ["master"]), "nodes[0].roles[0]", "must be one of"),
    ("empty-roles", _set(["nodes", 0, "roles"], []), "nodes[0].roles", "at least 1 item"),
    ("bad-driver-mode", _set(["gpu_pools", "a100", "driver", "mode"], "runfile"), "gpu_pools.a100.driver.mode",
     "must be one of: operator, preinstalled"),
    ("bad-sharing-mode", _set(["gpu_pools", "l40s", "sharing", "mode"], "sliced"), "gpu_pools.l40s.sharing.mode",
     "must be one of"),
    ("replicas-too-many", _set(["gpu_pools", "l40s", "sharing", "replicas"], 500), "gpu_pools.l40s.sharing.replicas",
     "between 2 and 64"),
    ("pool-name-uppercase", _set(["gpu_pools", "A100"], {"gpus_per_node": 8}), "gpu_pools.A100", "DNS-1123 label"),
    ("team-name-not-dns", _set(["teams", 0, "name"], "Research_Team"), "teams[0].name", "DNS-1123 label"),
    ("negative-quota", _set(["teams", 2, "quotas", "a100", "nvidia.com/gpu"], -1),
     'teams[2].quotas.a100["nvidia.com/gpu"]', "is not valid here"),
    ("literal-secret", _set(["secrets", "grafana_admin_password"], "hunter2hunter2"), "secrets.grafana_admin_password",
     "never written in config.yml"),
    ("bad-retention", _set(["services", "monitoring", "retention"], "15 days"), "services.monitoring.retention",
     "a duration like 30s"),
    ("bad-storage-uri", _all(_set(["services", "kserve", "enabled"], True),
                             _set(["services", "kserve", "models", 0, "storage_uri"], "gs://bucket/model")),
     "services.kserve.models[0].storage_uri", "must be"),
    ("nodes-not-a-list", _set(["nodes"], {"cp-1": {}}), "nodes", "must be an array"),
    # --- cluster rules ---
    ("bad-pod-cidr", _set(["cluster", "pod_cidr"], "10.233.64.0/33"), "cluster.pod_cidr", "CIDR"),
    ("cidr-overlap", _set(["cluster", "service_cidr"], "10.233.64.0/20"), "cluster.service_cidr", "overlaps"),
    ("kubernetes-too-old", _set(["cluster", "kubernetes_version"], "1.28.3"), "cluster.kubernetes_version",
     "1.30.0 or newer"),
    ("kubernetes-too-new", _set(["cluster", "kubernetes_version"], "1.37.0"), "cluster.kubernetes_version",
     "up to 1.35.x"),
    # --- nodes ---
    ("duplicate-node-name", _set(["nodes", 1, "name"], "cp-1"), "nodes[1].name", "duplicate node name"),
    ("duplicate-address", _set(["nodes", 4, "address"], "192.0.2.21"), "nodes[4].address", "duplicate address"),
    ("address-not-ip", _set(["nodes", 0, "address"], "cp-1.example.com"), "nodes[0].address",
     "IPv4 or IPv6 address"),
    ("address-in-pod-cidr", _set(["nodes", 0, "address"], "10.233.70.1"), "nodes[0].address", "inside cluster.pod_cidr"),
    ("no-control-plane", _all(*[_set(["nodes", i, "roles"], ["etcd"]) for i in range(3)]), "nodes",
     "'control-plane' role"),
    ("even-etcd", _set(["nodes", 2, "roles"], ["control-plane"]), "nodes", "odd"),
    ("no-worker", _all(*[_delete(["nodes", i, "pool"]) for i in (3, 4, 5, 6)],
                       *[_set(["nodes", i, "roles"], ["etcd"]) for i in (3, 4, 5, 6)]),
     "nodes", "'worker' role"),
    ("unknown-pool-ref", _set(["nodes", 3, "pool"], "a10"), "nodes[3].pool", "no such GPU pool"),
    ("pool-on-non-worker", _set(["nodes", 0, "pool"], "a100"), "nodes[0].roles", "must have the 'worker' role"),
    # --- pools, MIG and sharing ---
    ("unknown-model", _set(["gpu_pools", "a100", "model"], "a100-sxm9"), "gpu_pools.a100.model", "a100-sxm4-80gb"),
    ("impossible-mig-count", _set(["gpu_pools", "h100-mig", "mig", "layout"], {"7g.80gb": 2}),
     "gpu_pools.h100-mig.mig.layout", "7g.80gb"),
    ("unknown-mig-profile", _set(["gpu_pools", "h100-mig", "mig", "layout"], {"1g.5gb": 7}),
     "gpu_pools.h100-mig.mig.layout", "1g.5gb"),
    ("mig-on-non-mig-gpu", _set(["gpu_pools", "l40s", "mig"], {"strategy": "mixed", "layout": "all-1g.10gb"}),
     "gpu_pools.l40s.mig.layout", "does not support MIG"),
    ("mig-layout-without-strategy", _set(["gpu_pools", "h100-mig", "mig", "strategy"], "none"),
     "gpu_pools.h100-mig.mig.strategy", "'single' or 'mixed'"),
    ("mig-strategy-without-layout", _set(["gpu_pools", "a100", "mig", "strategy"], "mixed"),
     "gpu_pools.a100.mig.layout", "is required when mig.strategy"),
    ("mig-on-auto-model", _set(["gpu_pools", "h100-mig", "model"], "auto"), "gpu_pools.h100-mig.mig.layout",
     "needs a concrete"),
    ("single-strategy-mixed-layout", _set(["gpu_pools", "h100-mig", "mig", "strategy"], "single"),
     "gpu_pools.h100-mig.mig.strategy", "use strategy 'mixed'"),
    ("mig-pool-name-too-long", _rename_pool("h100-mig", "h" * 46), "gpu_pools." + "h" * 46,
     "of at most 45 characters"),
    ("mps-on-mig", _set(["gpu_pools", "h100-mig", "sharing"], {"mode": "mps", "replicas": 2}),
     "gpu_pools.h100-mig.sharing.mode", "MPS is not supported on MIG"),
    ("sharing-without-replicas", _delete(["gpu_pools", "l40s", "sharing", "replicas"]),
     "gpu_pools.l40s.sharing.replicas", "is required when sharing.mode"),
    ("replicas-without-sharing", _set(["gpu_pools", "a100", "sharing", "replicas"], 4),
     "gpu_pools.a100.sharing.replicas", "no effect"),
    ("driver-version-preinstalled", _set(["gpu_pools", "l40s", "driver", "version"], "580.105.08"),
     "gpu_pools.l40s.driver.version", "only used when driver.mode is 'operator'"),
    ("mig-without-operator", _set(["services", "gpu_operator", "enabled"], False), "gpu_pools.h100-mig.mig.layout",
     "enable services.gpu_operator"),
    # --- teams and quotas ---
    ("duplicate-team", _set(["teams", 1, "name"], "research"), "teams[1].name", "duplicate team name"),
    ("duplicate-namespace", _set(["teams", 2, "namespace"], "serving"), "teams[2].namespace", "already used"),
    ("system-namespace", _set(["teams", 2, "namespace"], "kube-system"), "teams[2].namespace", "system or platform"),
    ("quota-unknown-pool", _set(["teams", 0, "quotas", "h200"], {"nvidia.com/gpu": 1}), "teams[0].quotas.h200",
     "no such GPU pool"),
    ("quota-unknown-resource", _set(["teams", 0, "quotas", "h100-mig", "nvidia.com/mig-7g.80gb"], 1),
     'teams[0].quotas.h100-mig["nvidia.com/mig-7g.80gb"]', "does not provide this resource"),
    ("quota-full-gpu-on-mig-pool", _set(["teams", 0, "quotas", "h100-mig", "nvidia.com/gpu"], 1),
     'teams[0].quotas.h100-mig["nvidia.com/gpu"]', "it provides: nvidia.com/mig-1g.10gb"),
    ("quota-over-capacity", _set(["teams", 2, "quotas", "a100", "nvidia.com/gpu"], 40),
     'teams[2].quotas.a100["nvidia.com/gpu"]', "add up to 52 but the pool provides 16"),
    ("lending-over-nominal", _set(["teams", 0, "quotas", "a100", "nvidia.com/gpu", "lending_limit"], 20),
     'teams[0].quotas.a100["nvidia.com/gpu"].lending_limit', "cannot exceed the nominal quota 12"),
    ("volcano-parent-missing", _set(["teams", 1, "volcano", "parent"], "nobody"), "teams[1].volcano.parent",
     "no such team"),
    ("volcano-parent-self", _set(["teams", 1, "volcano", "parent"], "inference"), "teams[1].volcano.parent",
     "its own parent"),
    ("volcano-parent-cycle", _set(["teams", 0, "volcano", "parent"], "inference"), "teams[1].volcano.parent",
     "cycle"),
    # Volcano's queue webhook refuses children a parent does not cover (capacity plugin, hierarchical queues)
    ("volcano-hierarchy-deserved", _all(_set(["services", "volcano", "enabled"], True),
                                        _set(["services", "volcano", "scheduler_plugins"], ["gang", "capacity"])),
     "teams[1].volcano.parent", "the children of 'research' (inference) have deserved nvidia.com/gpu = 16 in total "
     "but 'research' has 12"),
    ("volcano-hierarchy-guarantee", _all(
        _set(["services", "volcano", "enabled"], True), _set(["services", "volcano", "scheduler_plugins"], ["capacity"]),
        _set(["teams", 1, "quotas"], {"h100-mig": {"nvidia.com/mig-1g.10gb": {"nominal": 4, "lending_limit": 0}}})),
     "teams[1].volcano.parent", "have guarantee nvidia.com/mig-1g.10gb = 4 in total but 'research' has 0"),
    ("volcano-hierarchy-capability", _all(
        _set(["services", "volcano", "enabled"], True), _set(["services", "volcano", "scheduler_plugins"], ["capacity"]),
        _set(["teams", 1, "quotas"], {"a100": {"nvidia.com/gpu": {"nominal": 2, "borrowing_limit": 15}}}),
        _set(["teams", 2, "quotas", "a100", "nvidia.com/gpu"], 2)),
     "teams[1].volcano.parent", "'inference' may borrow up to 17 nvidia.com/gpu (capability) but its ancestor "
     "'research' only 16"),
    # --- services ---
    ("kserve-without-cert-manager", _all(_set(["services", "kserve", "enabled"], True),
                                         _set(["services", "cert_manager", "enabled"], False)),
     "services.kserve.enabled", "needs cert-manager"),
    ("slurm-without-cert-manager", _all(_set(["services", "slurm", "enabled"], True),
                                        _set(["services", "cert_manager", "enabled"], False)),
     "services.slurm.enabled", "needs cert-manager"),
    ("slurm-unknown-pool", _all(_set(["services", "slurm", "enabled"], True),
                                _set(["services", "slurm", "nodesets", 0, "pool"], "v100")),
     "services.slurm.nodesets[0].pool", "no such GPU pool"),
    ("slurm-gres-over", _all(_set(["services", "slurm", "enabled"], True),
                             _set(["services", "slurm", "nodesets", 0, "gres"], {"gpu": 9})),
     "services.slurm.nodesets[0].gres.gpu", "has only 8"),
    ("slurm-gres-profile-missing", _all(_set(["services", "slurm", "enabled"], True),
                                        _set(["services", "slurm", "nodesets", 0, "pool"], "h100-mig"),
                                        _set(["services", "slurm", "nodesets", 0, "gres"], {"7g.80gb": 1})),
     'services.slurm.nodesets[0].gres["7g.80gb"]', "has no MIG profile '7g.80gb'"),
    ("slurm-partition-unknown-nodeset", _all(_set(["services", "slurm", "enabled"], True),
                                             _set(["services", "slurm", "partitions", 0, "nodesets"], ["h100"])),
     "services.slurm.partitions[0].nodesets[0]", "no such node set"),
    ("slurm-accounting-no-password", _all(_set(["services", "slurm", "enabled"], True),
                                          _set(["services", "slurm", "accounting"], {"enabled": True,
                                                                                     "database_host": "db1"})),
     "secrets.slurm_db_password", "is required when services.slurm.accounting"),
    ("slurm-accounting-generated-password", _all(_set(["services", "slurm", "enabled"], True),
                                                 _set(["services", "slurm", "accounting"], {"enabled": True,
                                                                                            "database_host": "db1"}),
                                                 _set(["secrets", "slurm_db_password"], {"generate": True})),
     "secrets.slurm_db_password", "must name a vaulted variable"),
    ("slurm-pool-shared-with-kueue", _set(["services", "slurm", "enabled"], True),
     "services.slurm.nodesets[0].pool", "also in team quotas (teams[0].quotas.a100, teams[2].quotas.a100)"),
    ("slurm-split-over-capacity", _all(_set(["services", "slurm", "enabled"], True),
                                       _set(["services", "slurm", "nodesets", 0, "shared_with_queues"], True)),
     "services.slurm.nodesets[0].shared_with_queues", "Slurm holds 16 and team quotas add up to 16"),
    ("slurm-replicas-over-nodes", _all(_set(["services", "slurm", "enabled"], True),
                                       _set(["services", "slurm", "nodesets", 0, "replicas"], 3)),
     "services.slurm.nodesets[0].replicas", "has 2 node(s)"),
    ("slurm-prolog-without-shebang", _all(_set(["services", "slurm", "enabled"], True),
                                          _set(["services", "slurm", "prolog_scripts"], {"00-x.sh": "exit 0"})),
     'services.slurm.prolog_scripts["00-x.sh"]', "#!"),
    ("kserve-tp-mismatch", _all(_set(["services", "kserve", "enabled"], True),
                                _set(["services", "kserve", "models", 0, "tensor_parallel_size"], 2)),
     "services.kserve.models[0].tensor_parallel_size", "must equal gpus (1)"),
    ("kserve-namespace-not-team", _all(_set(["services", "kserve", "enabled"], True),
                                       _set(["services", "kserve", "models", 0, "namespace"], "models")),
     "services.kserve.models[0].namespace", "team's namespace"),
    ("kserve-s3-no-credentials", _all(_set(["services", "kserve", "enabled"], True),
                                      _set(["services", "kserve", "models", 0, "storage_uri"], "s3://models/llama")),
     "services.kserve.models[0].credentials", "is required for an s3://"),
    ("kserve-llmisvc-not-enabled", _all(_set(["services", "kserve", "enabled"], True),
                                        _set(["services", "kserve", "models", 0, "kind"], "LLMInferenceService"),
                                        _delete(["services", "kserve", "models", 0, "min_replicas"]),
                                        _delete(["services", "kserve", "models", 0, "max_replicas"])),
     "services.kserve.models[0].kind", "or use kind: InferenceService (got 'LLMInferenceService')"),
    ("kserve-llmisvc-unknown-kind", _all(_set(["services", "kserve", "enabled"], True),
                                         _set(["services", "kserve", "models", 0, "kind"], "LLMISVC")),
     "services.kserve.models[0].kind", "must be one of: InferenceService, LLMInferenceService"),
    ("kserve-llmisvc-min-max-replicas", _all(_set(["services", "kserve", "enabled"], True),
                                             _set(["services", "kserve", "llmisvc"], True),
                                             _set(["services", "kserve", "models", 0, "kind"], "LLMInferenceService")),
     "services.kserve.models[0].max_replicas", "fixed number of replicas: set replicas instead"),
    ("kserve-replicas-on-inference-service", _all(_set(["services", "kserve", "enabled"], True),
                                                  _set(["services", "kserve", "models", 0, "replicas"], 2)),
     "services.kserve.models[0].replicas", "is for kind: LLMInferenceService only"),
    ("kserve-llmisvc-zero-replicas", _all(_set(["services", "kserve", "enabled"], True),
                                          _set(["services", "kserve", "llmisvc"], True),
                                          _set(["services", "kserve", "models", 0, "kind"], "LLMInferenceService"),
                                          _delete(["services", "kserve", "models", 0, "min_replicas"]),
                                          _delete(["services", "kserve", "models", 0, "max_replicas"]),
                                          _set(["services", "kserve", "models", 0, "replicas"], 0)),
     "services.kserve.models[0].replicas", "must be between 1 and 1000"),
    ("kserve-llmisvc-does-not-fit", _all(_set(["services", "kserve", "enabled"], True),
                                         _set(["services", "kserve", "llmisvc"], True),
                                         _set(["services", "kserve", "models", 0, "kind"], "LLMInferenceService"),
                                         _delete(["services", "kserve", "models", 0, "min_replicas"]),
                                         _delete(["services", "kserve", "models", 0, "max_replicas"]),
                                         _set(["services", "kserve", "models", 0, "parameters_billion"], 70),
                                         _set(["services", "kserve", "models", 0, "dtype"], "float16")),
     "services.kserve.models[0].gpu_resource", "the model does not fit: 70B parameters in float16"),
    ("kserve-llmisvc-tp-mismatch", _all(_set(["services", "kserve", "enabled"], True),
                                        _set(["services", "kserve", "llmisvc"], True),
                                        _set(["services", "kserve", "models", 0, "kind"], "LLMInferenceService"),
                                        _delete(["services", "kserve", "models", 0, "min_replicas"]),
                                        _delete(["services", "kserve", "models", 0, "max_replicas"]),
                                        _set(["services", "kserve", "models", 0, "tensor_parallel_size"], 2)),
     "services.kserve.models[0].tensor_parallel_size", "must equal gpus (1)"),
    ("kserve-llmisvc-namespace-not-team", _all(_set(["services", "kserve", "enabled"], True),
                                               _set(["services", "kserve", "llmisvc"], True),
                                               _set(["services", "kserve", "models", 0, "kind"],
                                                    "LLMInferenceService"),
                                               _delete(["services", "kserve", "models", 0, "min_replicas"]),
                                               _delete(["services", "kserve", "models", 0, "max_replicas"]),
                                               _set(["services", "kserve", "models", 0, "namespace"], "models")),
     "services.kserve.models[0].namespace", "team's namespace"),
    ("chart-local-without-path", _set(["services", "kueue", "chart"], {"source": "local"}),
     "services.kueue.chart.path", "is required when chart.source is 'local'"),
    ("monitoring-without-grafana-secret", _delete(["secrets", "grafana_admin_password"]),
     "secrets.grafana_admin_password", "never ships a default"),
    ("scrape-every-second", _set(["services", "monitoring", "gpu_scrape_interval"], "1s"),
     "services.monitoring.gpu_scrape_interval", "at least 5s"),
    ("airgap-without-mirror", _set(["airgap", "enabled"], True), "airgap.chart_mirror", "is required"),
    # --- cluster.addons (Kubespray's metrics_server_*) and cluster.oidc (kube_oidc_*) ---
    ("unknown-addon", _set(["cluster", "addons"], {"metrics_server": {}, "helm": {"enabled": True}}),
     "cluster.addons.helm", "unknown key 'helm'; allowed keys: metrics_server"),
    ("unknown-metrics-server-key", _set(["cluster", "addons"], {"metrics_server": {"replica": 2}}),
     "cluster.addons.metrics_server.replica", "did you mean 'replicas'"),
    ("metrics-server-enabled-not-bool", _set(["cluster", "addons"], {"metrics_server": {"enabled": "yes"}}),
     "cluster.addons.metrics_server.enabled", "must be a boolean"),
    ("metrics-server-no-replicas", _set(["cluster", "addons"], {"metrics_server": {"replicas": 0}}),
     "cluster.addons.metrics_server.replicas", "must be between 1 and 10"),
    ("metrics-resolution-format", _set(["cluster", "addons"], {"metrics_server": {"metric_resolution": "15"}}),
     "cluster.addons.metrics_server.metric_resolution", "a duration in whole seconds or minutes like 15s"),
    ("metrics-resolution-too-short", _set(["cluster", "addons"], {"metrics_server": {"metric_resolution": "10s"}}),
     "cluster.addons.metrics_server.metric_resolution", "must be longer than 10s"),
    ("autoscaling-without-metrics-server", _all(_set(["services", "kserve", "enabled"], True),
                                                _set(["cluster", "addons"], {"metrics_server": {"enabled": False}})),
     "services.kserve.models[0].max_replicas", "reads CPU usage from metrics-server"),
    ("unknown-oidc-key", _set(["cluster", "oidc"], {"issuer_url": "https://idp.example.com", "client_id": "k8s",
                                                    "client_secret": "x"}),
     "cluster.oidc.client_secret", "unknown key 'client_secret'"),
    ("oidc-without-issuer", _set(["cluster", "oidc"], {"client_id": "k8s"}), "cluster.oidc.issuer_url",
     "required key is missing"),
    ("oidc-without-client-id", _set(["cluster", "oidc"], {"issuer_url": "https://idp.example.com"}),
     "cluster.oidc.client_id", "required key is missing"),
    ("oidc-empty-client-id", _set(["cluster", "oidc"], {"issuer_url": "https://idp.example.com", "client_id": ""}),
     "cluster.oidc.client_id", "must not be empty"),
    ("oidc-http-issuer", _set(["cluster", "oidc"], {"issuer_url": "http://idp.example.com", "client_id": "k8s"}),
     "cluster.oidc.issuer_url", "accepts only https issuers) (got 'http://idp.example.com')"),
    ("oidc-issuer-no-host", _set(["cluster", "oidc"], {"issuer_url": "https:///realms/gpu", "client_id": "k8s"}),
     "cluster.oidc.issuer_url", "no host"),
    ("oidc-issuer-query", _set(["cluster", "oidc"], {"issuer_url": "https://idp.example.com/?a=1", "client_id": "k"}),
     "cluster.oidc.issuer_url", "a query or fragment is not allowed"),
    ("oidc-issuer-bad-port", _set(["cluster", "oidc"], {"issuer_url": "https://idp.example.com:99999",
                                                        "client_id": "k8s"}),
     "cluster.oidc.issuer_url", "not a valid URL"),
    ("oidc-claim-not-string", _set(["cluster", "oidc"], {"issuer_url": "https://idp.example.com", "client_id": "k8s",
                                                         "groups_claim": ["groups"]}),
     "cluster.oidc.groups_claim", "must be a string"),
    ("oidc-empty-claim", _set(["cluster", "oidc"], {"issuer_url": "https://idp.example.com", "client_id": "k8s",
                                                    "username_claim": ""}),
     "cluster.oidc.username_claim", "must not be empty"),
    ("oidc-prefix-not-string", _set(["cluster", "oidc"], {"issuer_url": "https://idp.example.com", "client_id": "k8s",
                                                          "groups_prefix": 7}),
     "cluster.oidc.groups_prefix", "must be a string"),
    ("oidc-relative-ca-file", _set(["cluster", "oidc"], {"issuer_url": "https://idp.example.com", "client_id": "k8s",
                                                         "ca_file": "certs/oidc-ca.pem"}),
     "cluster.oidc.ca_file", "must be an absolute path"),
]


@pytest.mark.parametrize("case_id,mutate,path,fragment", BAD, ids=[case[0] for case in BAD])
def test_bad_config(example, case_id, mutate, path, fragment):
    config = copy.deepcopy(example)
    mutate(config)
    error = problems(config)
    matching = [issue for issue in error.issues if issue.path == path]
    assert matching, "%s: no problem reported at %s; got:\n%s" % (case_id, path, error)
    assert any(fragment in str(issue) for issue in matching), "%s: %r not in %s" % (case_id, fragment, matching)
    assert path in str(error)


def test_at_least_forty_bad_cases():
    assert len(BAD) >= 40


@pytest.mark.parametrize("value", ["admin", "prom-operator", "deepops", "cns-stack", "Admin"])
def test_known_default_passwords_refused(example, value):
    config = copy.deepcopy(example)
    config["secrets"]["grafana_admin_password"] = {"var": "vault_grafana"}
    error = problems(config, secrets={"vault_grafana": value})
    [issue] = error.issues
    assert issue.path == "secrets.grafana_admin_password.var"
    assert "well-known default password" in issue.message
    assert "'%s'" % value not in str(error)  # never echo a secret


def test_undefined_secret_variable(example):
    config = copy.deepcopy(example)
    config["secrets"]["grafana_admin_password"] = {"var": "vault_missing"}
    error = problems(config, secrets={})
    assert "names variable 'vault_missing', which is not defined" in str(error)


def test_short_password_refused(example):
    config = copy.deepcopy(example)
    config["secrets"]["grafana_admin_password"] = {"var": "v"}
    error = problems(config, secrets={"v": "short1"})
    assert "shorter than 12 characters" in str(error)
    assert "short1" not in str(error)


def test_not_a_mapping():
    error = problems(["cluster"])
    assert "must be a mapping" in str(error)


def test_key_path_format():
    assert config_issues.key_path(["teams", 0, "quotas", "a100", "nvidia.com/gpu"]) == 'teams[0].quotas.a100["nvidia.com/gpu"]'
    assert config_issues.key_path(["gpu_pools", "h100-mig", "mig", "layout"]) == "gpu_pools.h100-mig.mig.layout"


def test_alertmanager_receivers_cannot_be_generated(example):
    config = copy.deepcopy(example)
    config["secrets"]["alertmanager_receivers"] = {"generate": True}
    [issue] = problems(config).issues
    assert issue.path == "secrets.alertmanager_receivers"
    assert "cannot be generated" in issue.message


@pytest.mark.parametrize("value", ["a-string", {}, {"receivers": []}, {"receivers": [{"webhook_configs": []}]}])
def test_alertmanager_receivers_shape(example, value):
    config = copy.deepcopy(example)
    config["secrets"]["alertmanager_receivers"] = {"var": "vault_am"}
    [issue] = problems(config, secrets={"vault_am": value}).issues
    assert issue.path == "secrets.alertmanager_receivers.var"
    assert "'receivers' list" in issue.message


def test_alertmanager_receivers_mapping_accepted(example):
    config = copy.deepcopy(example)
    config["secrets"]["alertmanager_receivers"] = {"var": "vault_am"}
    config_plan.validate(config, secret_values={"vault_am": {"receivers": [{"name": "oncall"}]}})


# ----------------------------------------------------------------------------------------------
# cluster.oidc: exact messages; a URL with credentials is never shown
# ----------------------------------------------------------------------------------------------

def _oidc(example, **oidc):
    config = copy.deepcopy(example)
    config["cluster"]["oidc"] = dict({"client_id": "kubernetes"}, **oidc)
    return config


def test_oidc_issuer_exact_message(example):
    error = problems(_oidc(example, issuer_url="http://idp.example.com/realms/gpu"))
    assert [str(i) for i in error.issues] == [
        "cluster.oidc.issuer_url: must be an https:// URL of the OIDC issuer with a host and no query or fragment, "
        "e.g. https://login.example.com/realms/gpu (the API server accepts only https issuers) "
        "(got 'http://idp.example.com/realms/gpu')"]


@pytest.mark.parametrize("url", ["https://admin:hunter2-secret@idp.example.com/realms/gpu",
                                 "http://admin:hunter2-secret@idp.example.com", "https://hunter2-secret@idp.example.com"])
def test_oidc_issuer_with_credentials_never_shown(example, url):
    error = problems(_oidc(example, issuer_url=url))
    assert [issue.path for issue in error.issues] == ["cluster.oidc.issuer_url"]
    assert "hunter2-secret" not in str(error)
    assert "admin" not in str(error).replace("gpufleet-admin", "")


def test_oidc_client_id_with_whitespace_refused(example):
    error = problems(_oidc(example, issuer_url="https://idp.example.com", client_id="kubernetes "))
    assert [issue.path for issue in error.issues] == ["cluster.oidc.client_id"]
    assert "whitespace" in str(error)


@pytest.mark.parametrize("oidc", [
    {"issuer_url": "https://idp.example.com"},
    {"issuer_url": "https://idp.example.com:8443/realms/gpu", "username_claim": "email", "username_prefix": "-",
     "groups_claim": "groups", "groups_prefix": "oidc:", "ca_file": "/etc/kubernetes/ssl/oidc-ca.pem"},
    {"issuer_url": "https://[2001:db8::1]/dex", "username_prefix": ""},
])
def test_oidc_good_settings_accepted(example, oidc):
    plan = config_plan.validate(_oidc(example, **oidc))
    assert plan["kubespray"]["kube_oidc_auth"] is True
    assert plan["kubespray"]["kube_oidc_url"] == oidc["issuer_url"]


def test_autoscaling_fixed_replicas_or_knative_needs_no_metrics_server(example):
    config = copy.deepcopy(example)
    config["cluster"]["addons"] = {"metrics_server": {"enabled": False}}
    config["services"]["kserve"]["enabled"] = True
    config["services"]["kserve"]["models"][0]["max_replicas"] = 1
    assert config_plan.validate(copy.deepcopy(config))["kubespray"]["metrics_server_enabled"] is False
    config["services"]["kserve"]["models"][0]["max_replicas"] = 2
    config["services"]["kserve"]["deployment_mode"] = "Knative"
    config_plan.validate(config)
