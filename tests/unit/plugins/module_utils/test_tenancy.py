"""Teams and quotas as Kueue/Volcano objects (module_utils/tenancy.py), and the config rules behind them."""
import copy
import os

import pytest
import yaml

from ansible_collections.gpufleet.platform.plugins.module_utils import config_plan, tenancy
from ansible_collections.gpufleet.platform.plugins.module_utils.config_issues import ConfigValidationError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


@pytest.fixture()
def example():
    with open(os.path.join(ROOT, "config.example.yml")) as handle:
        return yaml.safe_load(handle)


@pytest.fixture()
def plan(example):
    return config_plan.validate(example)


def by_name(objs, kind):
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def test_flavors_one_per_pool_plus_cpu(plan):
    flavors = by_name(tenancy.resource_flavors(plan), "ResourceFlavor")
    assert sorted(flavors) == ["a100", "gpufleet-cpu", "h100-mig", "l40s"]
    assert flavors["a100"]["spec"] == {"nodeLabels": {"gpufleet.io/pool": "a100"}}
    # the tainted MIG pool's flavor tolerates its taint
    assert flavors["h100-mig"]["spec"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}]
    assert flavors["gpufleet-cpu"]["spec"] == {}
    for flavor in flavors.values():
        assert flavor["apiVersion"] == "kueue.x-k8s.io/v1beta2"
        assert flavor["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "gpufleet"


def test_cluster_queue_quotas_match_config(plan):
    cqs = by_name(tenancy.cluster_queues(plan, "1k", "4Ti"), "ClusterQueue")
    research = cqs["research"]["spec"]
    assert research["cohortName"] == "gpufleet"
    assert research["queueingStrategy"] == "BestEffortFIFO"
    assert research["preemption"] == {"withinClusterQueue": "LowerPriority", "reclaimWithinCohort": "Any"}
    assert research["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "research"}}
    cpu, gpu = research["resourceGroups"]
    assert cpu["flavors"][0]["resources"] == [{"name": "cpu", "nominalQuota": "256"},
                                              {"name": "memory", "nominalQuota": "2Ti"}]
    assert gpu["coveredResources"] == ["nvidia.com/gpu", "nvidia.com/mig-1g.10gb", "nvidia.com/mig-3g.40gb"]
    flavors = {f["name"]: {r["name"]: r for r in f["resources"]} for f in gpu["flavors"]}
    # quantities in the API server's canonical string form (what Kueue's webhook stores back)
    assert flavors["a100"]["nvidia.com/gpu"] == {"name": "nvidia.com/gpu", "nominalQuota": "12", "borrowingLimit": "4",
                                                 "lendingLimit": "4"}
    assert flavors["h100-mig"]["nvidia.com/mig-3g.40gb"]["nominalQuota"] == "6"
    assert flavors["h100-mig"]["nvidia.com/gpu"]["nominalQuota"] == "0"
    # every flavor lists every covered resource, in order (a CRD rule)
    for flavor in gpu["flavors"]:
        assert [r["name"] for r in flavor["resources"]] == gpu["coveredResources"]
    # a team without cpu/memory gets the role defaults
    interns_cpu = cqs["interns"]["spec"]["resourceGroups"][0]["flavors"][0]["resources"]
    assert interns_cpu == [{"name": "cpu", "nominalQuota": "1k"}, {"name": "memory", "nominalQuota": "4Ti"}]


def test_never_preemption_never_reclaims(plan):
    plan["scheduling"]["preemption"] = "Never"
    cq = tenancy.cluster_queues(plan, "1", "1Gi")[0]
    assert cq["spec"]["preemption"] == {"withinClusterQueue": "Never", "reclaimWithinCohort": "Never"}


def test_local_queues_priorities_namespaces(plan):
    lqs = tenancy.local_queues(plan)
    assert [(q["metadata"]["namespace"], q["metadata"]["name"], q["spec"]["clusterQueue"]) for q in lqs] == [
        ("research", "default", "research"), ("serving", "default", "inference"), ("interns", "default", "interns")]
    wpcs = by_name(tenancy.workload_priority_classes(plan), "WorkloadPriorityClass")
    assert {n: w["value"] for n, w in wpcs.items()} == {"research": 1000, "inference": 2000, "interns": 10}
    assert "spec" not in wpcs["research"]
    nss = by_name(tenancy.namespaces(plan), "Namespace")
    assert nss["interns"]["metadata"]["labels"]["gpufleet.io/delete-namespace-on-removal"] == "false"
    assert nss["serving"]["metadata"]["labels"]["gpufleet.io/team"] == "inference"


def test_capacity_check(plan):
    assert tenancy.check_capacity(plan)["a100"]["nvidia.com/gpu"]["nominal"] == 16
    plan["teams"][2]["quotas"]["a100"]["nvidia.com/gpu"]["nominal"] = 40
    with pytest.raises(tenancy.TenancyError, match=r'a100\["nvidia.com/gpu"\].*add up to 52 .* provides 16'):
        tenancy.kueue_objects(plan)
    plan["scheduling"]["allow_overcommit"] = True
    assert tenancy.check_capacity(plan)["a100"]["nvidia.com/gpu"]["nominal"] == 52


def test_kueue_configuration(plan):
    config = tenancy.kueue_configuration(plan, "10m", True)
    assert config["apiVersion"] == "config.kueue.x-k8s.io/v1beta2"
    # config.example.yml lists batch/job; services.training adds what Trainer brings (training.kueue_integrations)
    assert config["integrations"]["frameworks"] == ["batch/job", "jobset.x-k8s.io/jobset",
                                                    "trainer.kubeflow.org/trainjob"]
    assert config["waitForPodsReady"]["timeout"] == "10m"
    assert config["waitForPodsReady"]["blockAdmission"] is True
    assert "fairSharing" not in config and "resources" not in config
    plan["services"]["kueue"].update(fair_sharing=True, wait_for_pods_ready=False, count_mig_as_gpu=True)
    config = tenancy.kueue_configuration(plan)
    assert "waitForPodsReady" not in config
    assert config["fairSharing"]["preemptionStrategies"]
    assert config["resources"]["transformations"] == [
        {"input": "nvidia.com/mig-1g.10gb", "strategy": "Replace", "outputs": {"nvidia.com/gpu": "142m"}},
        {"input": "nvidia.com/mig-2g.20gb", "strategy": "Replace", "outputs": {"nvidia.com/gpu": "285m"}},
        {"input": "nvidia.com/mig-3g.40gb", "strategy": "Replace", "outputs": {"nvidia.com/gpu": "428m"}}]


def test_kueue_configuration_metrics_follow_monitoring(plan):
    plan["services"]["monitoring"] = {"enabled": True, "namespace": "monitoring"}
    assert tenancy.kueue_configuration(plan)["metrics"] == {"bindAddress": ":8443", "enableClusterQueueResources": True}
    plan["services"]["monitoring"]["enabled"] = False
    assert tenancy.kueue_configuration(plan)["metrics"] == {"bindAddress": ":8443"}
    assert tenancy._KUEUE_CONFIG_BASE["metrics"] == {"bindAddress": ":8443"}  # the shared base is not changed


def test_count_mig_as_gpu_quotas_in_whole_gpus(example):
    example["services"]["kueue"]["count_mig_as_gpu"] = True
    with pytest.raises(ConfigValidationError, match=r'teams\[0\].quotas.h100-mig\["nvidia.com/mig-3g.40gb"\].*'
                                                    r'it provides: nvidia.com/gpu'):
        config_plan.validate(copy.deepcopy(example))
    for team in example["teams"]:
        team["quotas"].pop("h100-mig", None)
    example["teams"][0]["quotas"]["h100-mig"] = {"nvidia.com/gpu": 8}
    plan = config_plan.validate(example)
    assert plan["pools"]["h100-mig"]["quota_capacity"] == {"nvidia.com/gpu": 8}
    cq = by_name(tenancy.cluster_queues(plan, "1", "1Gi"), "ClusterQueue")["research"]
    assert cq["spec"]["resourceGroups"][1]["coveredResources"] == ["nvidia.com/gpu"]


def test_volcano_queues(plan):
    plan["services"]["volcano"]["scheduler_plugins"] = ["gang", "capacity", "binpack"]
    queues = tenancy.volcano_queues(plan)
    assert [q["metadata"]["name"] for q in queues] == ["interns", "research", "inference"]  # parents first
    q = {x["metadata"]["name"]: x["spec"] for x in queues}
    # quantities as the API server stores them (Volcano's webhook hands them back so)
    assert q["research"] == {"weight": 4, "reclaimable": True, "capability": {"nvidia.com/gpu": "16"},
                             "guarantee": {"resource": {"nvidia.com/gpu": "8"}},
                             "deserved": {"nvidia.com/gpu": "12", "nvidia.com/mig-1g.10gb": "8",
                                          "nvidia.com/mig-3g.40gb": "6", "cpu": "256", "memory": "2Ti"}}
    assert q["inference"]["parent"] == "research"
    assert q["interns"]["weight"] == 1 and "parent" not in q["interns"]
    conf = tenancy.volcano_scheduler_config(plan)
    assert conf["actions"] == "enqueue, allocate, backfill, reclaim"
    plugins = {p["name"]: p for tier in conf["tiers"] for p in tier["plugins"]}
    assert plugins["capacity"] == {"name": "capacity", "enableHierarchy": True}
    assert plugins["binpack"]["arguments"]["binpack.resources"].startswith("nvidia.com/gpu,")


def test_volcano_refuses_unsupported_plugins(plan):
    plan["services"]["volcano"]["scheduler_plugins"] = ["gang", "capacity", "proportion"]
    with pytest.raises(tenancy.TenancyError, match="capacity and proportion conflict"):
        tenancy.volcano_scheduler_config(plan)
    plan["services"]["volcano"]["scheduler_plugins"] = ["gang", "proportion"]
    with pytest.raises(tenancy.TenancyError, match="hierarchical queues need the capacity plugin"):
        tenancy.volcano_scheduler_config(plan)
    for team in plan["teams"]:
        team.get("volcano", {}).pop("parent", None)
    conf = tenancy.volcano_scheduler_config(plan)
    assert conf["actions"] == "enqueue, allocate, backfill"
    assert "deserved" not in tenancy.volcano_queues(plan)[0]["spec"]  # proportion uses weights


def _existing(objs):
    return [dict(o, metadata=dict(o["metadata"], uid="x")) for o in objs]


def test_stale_objects_removal(plan):
    desired = tenancy.kueue_objects(plan)
    everything = desired["namespaces"] + desired["cluster"] + desired["namespaced"]
    assert tenancy.stale_objects(_existing(everything), everything) == []
    removed = copy.deepcopy(plan)
    removed["teams"] = [t for t in removed["teams"] if t["name"] != "inference"]
    removed["pools"].pop("l40s")
    want = tenancy.kueue_objects(removed)
    stale = tenancy.stale_objects(_existing(everything), want["namespaces"] + want["cluster"] + want["namespaced"])
    assert [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in stale] == [
        ("LocalQueue", "serving", "default"), ("ClusterQueue", None, "inference"),
        ("WorkloadPriorityClass", None, "inference"), ("ResourceFlavor", None, "l40s")]
    # the namespace goes too when the team asked for it
    plan["teams"][1]["delete_namespace_on_removal"] = True
    everything = tenancy.namespaces(plan)
    assert [o["metadata"]["name"] for o in tenancy.stale_objects(_existing(everything), want["namespaces"])] == ["serving"]


def test_stale_volcano_children_first(plan):
    plan["services"]["volcano"]["scheduler_plugins"] = ["capacity"]
    plan["teams"].append({"name": "grandchild", "namespace": "grandchild", "quotas": {},
                          "volcano": {"parent": "inference"}})
    queues = tenancy.volcano_queues(plan)
    stale = tenancy.stale_objects(_existing(queues), [])
    assert [o["metadata"]["name"] for o in stale] == ["grandchild", "inference", "interns", "research"]


def test_selector_and_labels(plan):
    assert tenancy.selector(plan, "kueue") == ("app.kubernetes.io/managed-by=gpufleet,app.kubernetes.io/component=kueue,"
                                               "gpufleet.io/cluster=gpufleet")


def test_reserved_cpu_flavor_name(plan):
    plan["pools"]["gpufleet-cpu"] = dict(plan["pools"]["a100"])
    with pytest.raises(tenancy.TenancyError, match="reserved for the Kueue CPU flavor"):
        tenancy.resource_flavors(plan)


# --- the config rules the scheduling layer relies on (validation fails with the key named) ---

def _volcano(example, plugins):
    example["services"]["volcano"] = {"enabled": True, "scheduler_plugins": plugins}
    return example


@pytest.mark.parametrize("mutate, path, message", [
    (lambda c: _volcano(c, ["gang", "capacity", "proportion"]), "services.volcano.scheduler_plugins",
     "capacity and proportion conflict"),
    (lambda c: _volcano(c, ["gang", "proportion"]), "teams[1].volcano.parent", "need Volcano's capacity plugin"),
    (lambda c: _volcano(c, ["capacity"]) and c["teams"][2].update(name="root"), "teams[2].name",
     "Volcano creates the queues"),
    (lambda c: c["gpu_pools"].update({"gpufleet-cpu": c["gpu_pools"].pop("l40s")}), "gpu_pools.gpufleet-cpu",
     "reserved for the Kueue CPU flavor"),
    (lambda c: c["teams"][0]["quotas"].update({"l40": {"nvidia.com/gpu": 1}}), "teams[0].quotas.l40",
     "no such GPU pool"),
])
def test_bad_scheduling_config(example, mutate, path, message):
    mutate(example)
    with pytest.raises(ConfigValidationError) as info:
        config_plan.validate(example)
    hits = [i for i in info.value.issues if i.path == path]
    assert hits and message in hits[0].message, [str(i) for i in info.value.issues]


def test_overcommit_warning_shows_total(example):
    example["scheduling"]["allow_overcommit"] = True
    example["teams"][2]["quotas"]["a100"]["nvidia.com/gpu"] = 40
    plan = config_plan.validate(example)
    assert any("add up to 52 of 16" in w and "interns=40" in w for w in plan["warnings"]), plan["warnings"]
