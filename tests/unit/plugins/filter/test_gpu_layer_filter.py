"""Pure logic of the GPU layer filters: label patches only where labels differ, driver opt-out labels,
mig-parted document, which nodes change MIG layout, GPU pods per node, MIG states, device-plugin configs."""
import copy
import json
import os
import re

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.gpufleet.platform.plugins.filter import gpu_layer as g
from ansible_collections.gpufleet.platform.plugins.module_utils import config_plan, mig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


@pytest.fixture(scope="module")
def plan():
    with open(os.path.join(ROOT, "config.example.yml")) as fh:
        return config_plan.validate(yaml.safe_load(fh))


def node(name, **labels):
    return {"metadata": {"name": name, "labels": dict(labels)}}


def test_node_label_patches_only_where_different():
    nodes = [node("a", **{"x": "1"}), node("b", **{"x": "2", "y": "3"}), node("c")]
    patches = g.node_label_patches(nodes, {"a": {"x": "1"}, "b": {"x": "1", "y": None}, "c": {"y": None},
                                           "missing": {"x": "1"}})
    assert patches == [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "b", "labels": {"x": "1", "y": None}}}]


def test_node_label_patches_scale_is_one_list():
    nodes = [node("n%04d" % i, **{g.MIG_CONFIG_LABEL: "all-disabled"}) for i in range(1000)]
    desired = {"n%04d" % i: {g.MIG_CONFIG_LABEL: "all-disabled"} for i in range(1000)}
    assert g.node_label_patches(nodes, desired) == []
    desired["n0007"] = {g.MIG_CONFIG_LABEL: "gpufleet-h100"}
    assert [p["metadata"]["name"] for p in g.node_label_patches(nodes, desired)] == ["n0007"]


def test_operator_settings_of_example(plan):
    s = g.gpu_operator_settings(plan["pools"])
    assert s["driver_enabled"] is True and s["driver_version"] is None
    assert s["preinstalled_pools"] == ["l40s"] and s["mig_strategies"] == ["mixed"] and s["mig_capable"] is True


def test_driver_opt_out_labels(plan):
    pools = copy.deepcopy(plan["pools"])
    # l40s is preinstalled: its node gets the opt-out label; an a100 node with a stale "false" loses it
    patches = g.gpu_operator_settings(pools, [node("gpu-a100-1", **{g.DRIVER_DEPLOY_LABEL: "false"})], driver_patches=True)
    got = {p["metadata"]["name"]: p["metadata"]["labels"][g.DRIVER_DEPLOY_LABEL] for p in patches}
    assert got == {"gpu-l40s-1": "false", "gpu-a100-1": None}
    labelled = [node("gpu-l40s-1", **{g.DRIVER_DEPLOY_LABEL: "false"})]
    assert g.gpu_operator_settings(pools, labelled, driver_patches=True) == []
    for pool in pools.values():  # all preinstalled: driver off, labels not needed
        pool["driver"] = {"mode": "preinstalled"}
    assert g.gpu_operator_settings(pools)["driver_enabled"] is False
    assert g.gpu_operator_settings(pools, [], driver_patches=True) == []


def test_conflicting_versions_and_strategies_are_reported(plan):
    pools = copy.deepcopy(plan["pools"])
    pools["a100"]["driver"] = {"mode": "operator", "version": "580.105.08"}
    pools["h100-mig"]["driver"] = {"mode": "operator", "version": "595.91.07"}
    pools["a100"]["mig"]["strategy"] = "single"
    s = g.gpu_operator_settings(pools)
    assert s["driver_versions"] == ["580.105.08", "595.91.07"] and s["driver_version"] is None
    assert s["mig_strategies"] == ["mixed", "single"]


def _old_document(plan, device_filter=False):
    """What the role rendered before it read the plan: mig_layout (plan_layout) once per MIG pool, merged."""
    configs = {"all-disabled": [{"devices": "all", "mig-enabled": False}]}
    for pool in plan["pools"].values():
        if pool["mig"]["enabled"]:
            planned = mig.plan_layout(pool["catalog"]["key"], pool["mig"]["layout"], pool["gpus_per_node"],
                                      (pool["driver"] or {}).get("version"), config_name=pool["mig"]["config_name"],
                                      device_filter=device_filter)
            configs.update(planned["mig_parted"]["mig-configs"])
    return {"version": "v1", "mig-configs": configs}


def test_mig_parted_document_from_the_plan_is_the_one_mig_layout_gave(plan):
    doc = g.mig_parted_document(plan["pools"])
    assert doc == _old_document(plan)
    assert sorted(doc["mig-configs"]) == ["all-disabled"] + sorted(
        p["mig"]["config_name"] for p in plan["pools"].values() if p["mig"]["enabled"])
    assert g.mig_parted_document(plan["pools"], None, True) == _old_document(plan, device_filter=True)
    assert g.mig_parted_document({}) == {"version": "v1", "mig-configs": {
        "all-disabled": [{"devices": "all", "mig-enabled": False}]}}


def test_mig_parted_document_filters_devices_where_discovery_found_mixed_models(plan):
    pool = next(p for p in plan["pools"].values() if p["mig"]["enabled"])
    node = pool["nodes"][0]
    hostvars = {node: {"ansible_facts": {"gpufleet_gpu_facts": {"models": {"h100": 4, "a100": 4}}}},
                "elsewhere": {}}
    doc = g.mig_parted_document(plan["pools"], hostvars)
    assert all("device-filter" in e for e in doc["mig-configs"][pool["mig"]["config_name"]])
    others = [n for n, p in plan["pools"].items() if p["mig"]["enabled"] and p is not pool]
    for name in others:
        assert not any("device-filter" in e for e in doc["mig-configs"][plan["pools"][name]["mig"]["config_name"]])
    one_model = {node: {"ansible_facts": {"gpufleet_gpu_facts": {"models": {"h100": 8}}}}}
    assert g.mig_parted_document(plan["pools"], one_model) == _old_document(plan)


def test_mig_parted_document_refuses_a_plan_without_layouts(plan):
    pools = copy.deepcopy(plan["pools"])
    name = next(n for n, p in pools.items() if p["mig"]["enabled"])
    del pools[name]["mig"]["layout_per_gpu"]
    with pytest.raises(AnsibleFilterError, match=r"gpu_pools.%s: the plan has no MIG layout" % name):
        g.mig_parted_document(pools)
    with pytest.raises(AnsibleFilterError, match="expected gpufleet_plan.pools"):
        g.mig_parted_document([])


def test_mig_selection(plan):
    pools = plan["pools"]
    name = pools["h100-mig"]["mig"]["config_name"]
    assert re.fullmatch(r"gpufleet-h100-mig-[0-9a-f]{8}", name), name  # the layout's hash in the name
    new = {"mig-configs": {name: [{"devices": "all", "mig-enabled": True, "mig-devices": {"1g.10gb": 7}}],
                           "all-disabled": [{"devices": "all", "mig-enabled": False}]}}
    nodes = [node("gpu-a100-1"), node("gpu-a100-2", **{g.MIG_CONFIG_LABEL: "all-disabled"}),
             node("gpu-h100-1", **{g.MIG_CONFIG_LABEL: name}), node("gpu-l40s-1")]
    sel = g.mig_selection(pools, nodes, new, new)
    assert sel["configs"] == {"gpu-a100-1": "all-disabled", "gpu-a100-2": "all-disabled",
                              "gpu-h100-1": name}  # l40s is not MIG-capable
    assert sel["changing"] == [] and sel["missing"] == []
    old = copy.deepcopy(new)
    old["mig-configs"][name][0]["mig-devices"] = {"3g.40gb": 2}
    assert g.mig_selection(pools, nodes, old, new)["changing"] == ["gpu-h100-1"]  # same label, new content
    nodes[2] = node("gpu-h100-1")
    assert g.mig_selection(pools, nodes, new, new)["changing"] == ["gpu-h100-1"]  # label added
    assert g.mig_selection(pools, nodes[:1], new, new)["missing"] == ["gpu-a100-2", "gpu-h100-1"]
    # a rename: the node's config (an older name, e.g. gpufleet-<pool> before the hash) holds the same layout
    renamed = {"mig-configs": dict(old["mig-configs"], **{"gpufleet-h100-mig": new["mig-configs"][name]})}
    nodes[2] = node("gpu-h100-1", **{g.MIG_CONFIG_LABEL: "gpufleet-h100-mig"})
    sel = g.mig_selection(pools, nodes, renamed, new)
    assert sel["changing"] == [] and sel["labels"]["gpu-h100-1"] == {g.MIG_CONFIG_LABEL: name}, sel
    renamed["mig-configs"]["gpufleet-h100-mig"] = old["mig-configs"][name]  # the old name held another layout
    assert g.mig_selection(pools, nodes, renamed, new)["changing"] == ["gpu-h100-1"]
    nodes[2] = node("gpu-h100-1", **{g.MIG_CONFIG_LABEL: "gone"})  # a name the ConfigMap no longer has
    assert g.mig_selection(pools, nodes, renamed, new)["changing"] == ["gpu-h100-1"]


def test_mig_config_name_follows_the_layout():
    from ansible_collections.gpufleet.platform.plugins.module_utils.config_plan import mig_config_name
    one = {"layout": {"1g.10gb": 7}, "placements": [[0, 1]]}
    assert mig_config_name("h100", "h100-sxm5-80gb", one) == mig_config_name("h100", "h100-sxm5-80gb", dict(one))
    other = {"layout": {"3g.40gb": 2}}
    assert mig_config_name("h100", "h100-sxm5-80gb", one) != mig_config_name("h100", "h100-sxm5-80gb", other)
    assert mig_config_name("h100", "h100-sxm5-80gb", one) != mig_config_name("h200", "h100-sxm5-80gb", one)
    assert mig_config_name("h100", "h100-sxm5-80gb", one).startswith("gpufleet-h100-")


def test_gpu_pods_by_node():
    def pod(name, node_name, phase="Running", **res):
        return {"metadata": {"namespace": "t", "name": name}, "status": {"phase": phase},
                "spec": {"nodeName": node_name, "containers": [{"resources": {"limits": res}}]}}
    pods = [pod("a", "n1", **{"nvidia.com/mig-1g.10gb": "1"}), pod("b", "n1", cpu="1"),
            pod("c", "n2", phase="Succeeded", **{"nvidia.com/gpu": "1"}), pod("d", "n3", **{"nvidia.com/gpu": "2"})]
    assert g.gpu_pods_by_node(pods, ["n1", "n2"]) == {"n1": ["t/a (nvidia.com/mig-1g.10gb=1)"]}
    assert list(g.gpu_pods_by_node(pods)) == ["n1", "n3"]


def test_mig_state_report():
    nodes = [node("a", **{g.MIG_CONFIG_LABEL: "x", g.MIG_STATE_LABEL: "success"}),
             node("b", **{g.MIG_CONFIG_LABEL: "x", g.MIG_STATE_LABEL: "pending"}),
             node("c", **{g.MIG_CONFIG_LABEL: "x", g.MIG_STATE_LABEL: "failed"}),
             node("d", **{g.MIG_CONFIG_LABEL: "old", g.MIG_STATE_LABEL: "success"})]
    nodes[2]["metadata"]["annotations"] = {"lab.gpufleet.io/mig-error": "does not fit"}
    r = g.mig_state_report(nodes, {"a": "x", "b": "x", "c": "x", "d": "x", "e": "x"})
    assert r["success"] == ["a"] and r["done"] is False
    assert r["failed"] == {"c": "failed (does not fit)"}
    assert set(r["pending"]) == {"b", "d", "e"}
    assert g.mig_state_report(nodes[:1], {"a": "x"})["done"] is True


def test_device_plugin_config(plan):
    dp = g.device_plugin_config(plan["pools"])
    assert dp["keys"] == ["default", "l40s"]
    l40s = json.loads(dp["data"]["l40s"])
    assert l40s == {"version": "v1", "sharing": {"timeSlicing": {
        "renameByDefault": False, "failRequestsGreaterThanOne": True,
        "resources": [{"name": "nvidia.com/gpu", "replicas": 4}]}}}
    assert dp["node_configs"]["gpu-l40s-1"] == {g.DEVICE_PLUGIN_LABEL: "l40s"}
    assert dp["node_configs"]["gpu-a100-1"] == {g.DEVICE_PLUGIN_LABEL: "default"}
    assert dp["hash"] == g.device_plugin_config(copy.deepcopy(plan["pools"]))["hash"]


def test_device_plugin_config_mig_time_slicing_and_mps(plan):
    pools = copy.deepcopy(plan["pools"])
    pools["h100-mig"]["sharing"] = {"mode": "time-slicing", "replicas": 2}
    doc = json.loads(g.device_plugin_config(pools)["data"]["h100-mig"])
    assert [r["name"] for r in doc["sharing"]["timeSlicing"]["resources"]] == [
        "nvidia.com/mig-1g.10gb", "nvidia.com/mig-2g.20gb", "nvidia.com/mig-3g.40gb"]
    pools["h100-mig"]["sharing"] = {"mode": "mps", "replicas": 2}
    with pytest.raises(AnsibleFilterError, match="gpu_pools.h100-mig.sharing.mode"):
        g.device_plugin_config(pools)
    pools["h100-mig"]["sharing"] = {"mode": "none"}
    pools["a100"]["sharing"] = {"mode": "mps", "replicas": 3}
    doc = json.loads(g.device_plugin_config(pools)["data"]["a100"])
    assert doc["sharing"]["mps"]["resources"] == [{"name": "nvidia.com/gpu", "replicas": 3}]


def test_sharing_mismatches():
    nodes = [node("a", **{g.SHARING_STRATEGY_LABEL: "none"}), node("b", **{g.SHARING_STRATEGY_LABEL: "none"})]
    assert g.sharing_mismatches(nodes, {"a": "none", "b": "time-slicing"}) == [
        "b: nvidia.com/gpu.sharing-strategy=none, want time-slicing"]
