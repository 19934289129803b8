"""The GPU layer (playbooks/gpu.yml: gpu_operator, mig, gpu_sharing) against the lab.

Real kube-apiserver with the upstream GPU Operator CRDs and, when the lab has built it, the real gpu-operator chart
and operator (test_gpu_operator.py checks what only the operator does). The GPU simulator plays the hardware and
what the operands would publish (MIG manager, device plugin, GFD, NFD labels). What the lab cannot show: a real
restart of the device plugin process (the restart patch rolls the operator's DaemonSet; KWOK recreates its pods).
Without the operator binary the test creates an inert DaemonSet under the upstream name to see the restart patch.
"""
import copy
import json
import os
import re
import subprocess
import time

import pytest
import yaml

from gpufleet_lab import controllers
from playbook import LAB_CONFIG, ansible_playbook, lab_bin

PLAYBOOK = "playbooks/gpu.yml"
NS = "gpu-operator"
MIG_CM = "gpufleet-mig-parted-config"
DP_CM = "gpufleet-device-plugin-config"
DP_DS = "nvidia-device-plugin-daemonset"
HASH_ANN = "gpufleet.io/device-plugin-config-hash"
LAYER_LABELS = ("nvidia.com/mig.config", "nvidia.com/device-plugin.config")


def _labels(lab, name):
    return lab.core.read_node(name).metadata.labels or {}


def _node_names(lab, pool):
    return [n["name"] for n in lab.gpu_nodes() if n["pool"] == pool]


def _write_config(tmp_path, mutate):
    with open(LAB_CONFIG) as fh:
        config = yaml.safe_load(fh)
    config = copy.deepcopy(config)
    mutate(config)
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _reset_layer(lab):
    """Remove what the layer wrote (ConfigMaps, node selection labels) so the first converge changes."""
    from kubernetes.client.rest import ApiException
    for name in (MIG_CM, DP_CM):
        try:
            lab.core.delete_namespaced_config_map(name, NS)
        except ApiException as exc:
            if exc.status != 404:
                raise
    for node in lab.gpu_nodes():
        labels = _labels(lab, node["name"])
        drop = {k: None for k in LAYER_LABELS if k in labels}
        if drop:
            lab.core.patch_node(node["name"], {"metadata": {"labels": drop}})


def _stand_in_device_plugin(lab):
    """An inert DaemonSet under the Operator's device-plugin name (selects no node), to observe restarts.

    With the real operator its own DaemonSet is there instead: only the role's restart annotation is removed,
    so that the first converge restarts it again (the operator keeps the template annotations it did not set)."""
    from kubernetes.client.rest import ApiException
    if controllers.match("gpu-operator", "gpu-operator", None) is not None:
        try:
            ds = lab.apps.read_namespaced_daemon_set(DP_DS, NS)
        except ApiException as exc:
            if exc.status != 404:
                raise
            return
        if HASH_ANN in (ds.spec.template.metadata.annotations or {}):
            lab.apps.patch_namespaced_daemon_set(DP_DS, NS, {"spec": {"template": {"metadata": {
                "annotations": {HASH_ANN: None}}}}})
        return
    try:
        lab.core.create_namespace({"metadata": {"name": NS}})
    except ApiException as exc:
        if exc.status != 409:
            raise
    body = {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": DP_DS, "namespace": NS, "labels": {"gpufleet.io/test": "stand-in"}},
            "spec": {"selector": {"matchLabels": {"app": DP_DS}},
                     "template": {"metadata": {"labels": {"app": DP_DS}},
                                  "spec": {"nodeSelector": {"gpufleet.io/test-never": "true"},
                                           "containers": [{"name": "p", "image": "registry.invalid/stand-in:0"}]}}}}
    try:
        lab.apps.delete_namespaced_daemon_set(DP_DS, NS)
        time.sleep(1)
    except ApiException as exc:
        if exc.status != 404:
            raise
    lab.apps.create_namespaced_daemon_set(NS, body)


@pytest.fixture(scope="module")
def converged(lab):
    _reset_layer(lab)
    _stand_in_device_plugin(lab)
    first = ansible_playbook(PLAYBOOK)
    assert first.rc == 0, str(first)
    yield first


def test_first_converge_changes(converged):
    assert converged.changed > 0, str(converged)
    tasks = "\n".join(converged.changed_tasks())
    assert "mig-parted ConfigMap" in tasks and "nvidia.com/mig.config label" in tasks, tasks
    assert "device-plugin configs ConfigMap" in tasks and "Restart the device plugin" in tasks, tasks


def test_second_converge_and_check_mode_change_nothing(converged):
    second = ansible_playbook(PLAYBOOK)
    assert second.rc == 0, str(second)
    assert second.changed == 0, "\n".join(second.changed_tasks())
    check = ansible_playbook(PLAYBOOK, check=True, diff=True)
    assert check.rc == 0, str(check)
    assert check.changed == 0, "\n".join(check.changed_tasks())


def test_cluster_policy_and_values_carry_the_config(lab, converged):
    cp = lab.custom.get_cluster_custom_object("nvidia.com", "v1", "clusterpolicies", "cluster-policy")
    spec = cp["spec"]
    assert cp["status"]["state"] == "ready"
    assert spec["driver"]["enabled"] is True
    assert spec["devicePlugin"]["config"] == {"name": DP_CM, "default": "default"}
    assert spec["migManager"]["config"]["name"] == MIG_CM
    assert spec["migManager"]["config"]["default"] == "all-disabled"
    assert spec["mig"]["strategy"] == "mixed"
    helm = os.path.join(lab_bin(), "helm")
    kubeconfig = os.path.expanduser(yaml.safe_load(open(LAB_CONFIG))["cluster"]["kubeconfig"])
    out = subprocess.run([helm, "--kubeconfig", kubeconfig, "get", "values", "gpu-operator", "-n", NS, "-o", "json"],
                         capture_output=True, text=True, check=True).stdout
    values = json.loads(out)
    assert values["cdi"] == {"enabled": True} and values["nfd"] == {"enabled": True}
    assert values["dcgmExporter"]["serviceMonitor"] == {"enabled": True, "interval": "30s"}  # monitoring is on
    assert values["dcgmExporter"]["env"] == [{"name": "DCGM_EXPORTER_KUBERNETES", "value": "true"}]  # per-pod GPU metrics
    assert values["driver"]["repository"] == "registry.invalid/gpufleet-lab/nvidia"  # air-gap image mirror
    ns = lab.core.read_namespace(NS).metadata.labels
    assert ns["pod-security.kubernetes.io/enforce"] == "privileged"


def test_mig_labels_and_resources_on_the_right_nodes(lab, converged):
    configs = set()
    for name in _node_names(lab, "h100"):
        node = lab.core.read_node(name)
        configs.add(node.metadata.labels["nvidia.com/mig.config"])
        # gpufleet-<pool>-<hash of the layout>: a new layout is a new name, the label change the MIG manager acts on
        assert re.fullmatch(r"gpufleet-h100-[0-9a-f]{8}", node.metadata.labels["nvidia.com/mig.config"])
        assert node.metadata.labels["nvidia.com/mig.config.state"] == "success"
        assert node.status.capacity["nvidia.com/mig-1g.10gb"] == "56"
    for name in _node_names(lab, "a100"):
        node = lab.core.read_node(name)
        assert node.metadata.labels["nvidia.com/mig.config"] == "all-disabled"
        assert node.status.capacity["nvidia.com/gpu"] == "8"
        assert not any(k.startswith("nvidia.com/mig-") and v != "0" for k, v in node.status.capacity.items())
    for name in _node_names(lab, "l40s"):  # not MIG-capable: no MIG label
        assert "nvidia.com/mig.config" not in _labels(lab, name)
    doc = yaml.safe_load(lab.core.read_namespaced_config_map(MIG_CM, NS).data["config.yaml"])
    assert len(configs) == 1 and doc["mig-configs"][configs.pop()] == [
        {"devices": "all", "mig-enabled": True, "mig-devices": {"1g.10gb": 7}}]
    assert doc["mig-configs"]["all-disabled"] == [{"devices": "all", "mig-enabled": False}]


def test_sharing_configs_labels_and_restart(lab, converged):
    cm = lab.core.read_namespaced_config_map(DP_CM, NS)
    l40s = yaml.safe_load(cm.data["l40s"])
    assert l40s["sharing"]["timeSlicing"] == {
        "renameByDefault": False, "failRequestsGreaterThanOne": True,
        "resources": [{"name": "nvidia.com/gpu", "replicas": 4}]}
    assert yaml.safe_load(cm.data["default"]) == {"version": "v1"}
    for name in _node_names(lab, "l40s"):
        node = lab.core.read_node(name)
        assert node.metadata.labels["nvidia.com/device-plugin.config"] == "l40s"
        assert node.metadata.labels["nvidia.com/gpu.sharing-strategy"] == "time-slicing"
        assert node.status.capacity["nvidia.com/gpu"] == "16"
    for name in _node_names(lab, "a100") + _node_names(lab, "h100"):
        assert _labels(lab, name)["nvidia.com/device-plugin.config"] == "default"
    ds = lab.apps.read_namespaced_daemon_set(DP_DS, NS)
    assert ds.spec.template.metadata.annotations[HASH_ANN] == cm.metadata.annotations["gpufleet.io/config-hash"]


def _snapshot(lab):
    return {n["name"]: {k: v for k, v in _labels(lab, n["name"]).items() if k.startswith("nvidia.com/")}
            for n in lab.gpu_nodes()}, lab.core.read_namespaced_config_map(MIG_CM, NS).data


def test_impossible_layout_fails_before_any_label_changes(lab, converged, tmp_path):
    before = _snapshot(lab)

    def mutate(config):
        config["gpu_pools"]["h100"]["mig"]["layout"] = {"7g.80gb": 1, "1g.10gb": 1}
    result = ansible_playbook(PLAYBOOK, config=_write_config(tmp_path, mutate))
    assert result.rc != 0
    assert "gpu_pools.h100.mig.layout" in result.stdout + result.stderr, str(result)
    assert _snapshot(lab) == before


def test_layout_change_under_gpu_pod_is_refused(lab, converged, namespace, tmp_path):
    node = _node_names(lab, "h100")[0]
    lab.core.create_namespaced_pod(namespace, {
        "metadata": {"name": "mig-user"},
        "spec": {"nodeName": node, "tolerations": [{"operator": "Exists"}],
                 "containers": [{"name": "c", "image": "registry.invalid/cuda:0",
                                 "resources": {"limits": {"nvidia.com/mig-1g.10gb": "1"}}}]}})
    deadline = time.time() + 60
    while lab.core.read_namespaced_pod("mig-user", namespace).status.phase != "Running":
        assert time.time() < deadline, "the pod did not become Running"
        time.sleep(1)
    before = _snapshot(lab)

    def mutate(config):
        config["gpu_pools"]["h100"]["mig"]["layout"] = {"2g.20gb": 3}
        for team in config["teams"]:
            quotas = team.get("quotas", {})
            if "h100" in quotas:
                quotas["h100"] = {"nvidia.com/mig-2g.20gb": 48}
    result = ansible_playbook(PLAYBOOK, config=_write_config(tmp_path, mutate))
    assert result.rc != 0, str(result)
    out = result.stdout
    assert "would disrupt running GPU pods" in out and node in out, str(result)
    assert "%s/mig-user" % namespace in out and "gpu_pools.h100.mig.allow_disruption" in out, str(result)
    assert _snapshot(lab) == before
    # the role cordoned the changing nodes before it looked for GPU pods, and gave the cordons back
    assert any("node_drain : Uncordon the nodes this role cordoned" in t for t in result.changed_tasks()), str(result)
    for name in _node_names(lab, "h100"):
        obj = lab.core.read_node(name)
        assert not obj.spec.unschedulable and "gpufleet.io/cordoned-by" not in (obj.metadata.annotations or {}), name


def test_layout_change_with_allow_disruption_drains_applies_and_uncordons(lab, converged, namespace, tmp_path):
    """mig.allow_disruption: the node running a GPU pod is cordoned and drained (the pod evicted), the new layout
    applied, and the node uncordoned once the MIG state is success."""
    node = _node_names(lab, "h100")[0]
    lab.apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": "mig-user"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "mig-user"}},
                 "template": {"metadata": {"labels": {"app": "mig-user"}},
                              "spec": {"nodeSelector": {"kubernetes.io/hostname": node},
                                       "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
                                       "containers": [{"name": "c", "image": "registry.invalid/cuda:0",
                                                       "resources": {"limits": {"nvidia.com/mig-1g.10gb": "1"}}}]}}}})

    def running_pods():
        return [p.metadata.name for p in lab.core.list_namespaced_pod(namespace).items
                if p.spec.node_name == node and p.status.phase == "Running" and not p.metadata.deletion_timestamp]
    deadline = time.time() + 60
    while not running_pods():
        assert time.time() < deadline, "the Deployment's pod did not become Running on %s" % node
        time.sleep(1)
    evicted = running_pods()

    def mutate(config):
        config["gpu_pools"]["h100"]["mig"]["layout"] = {"2g.20gb": 3}
        config["gpu_pools"]["h100"]["mig"]["allow_disruption"] = True
        for team in config["teams"]:
            quotas = team.get("quotas", {})
            if "h100" in quotas:
                quotas["h100"] = {"nvidia.com/mig-2g.20gb": 48}
    try:
        result = ansible_playbook(PLAYBOOK, config=_write_config(tmp_path, mutate))
        assert result.rc == 0, str(result)
        assert any("node_drain : Cordon the nodes (bulk), marked gpufleet.io/cordoned-by=mig" in t for t in result.changed_tasks()), result.changed_tasks()
        assert any("node_drain : Drain the cordoned nodes" in t for t in result.changed_tasks()), result.changed_tasks()
        assert any("Uncordon them" in t for t in result.changed_tasks()), result.changed_tasks()
        reported = re.search(r"Uncordoned \(cordoned by gpufleet.platform for a MIG change, target state reached\): (.*?);",
                             " ".join(result.stdout.split()))
        assert reported and node in reported.group(1).split(", "), str(result)  # both h100 nodes change layout
        names = [p.metadata.name for p in lab.core.list_namespaced_pod(namespace).items]
        assert not set(evicted) & set(names), "the GPU pod was not evicted: %s" % names
        after = lab.core.read_node(node)
        assert not after.spec.unschedulable, "the node was left cordoned"
        assert after.metadata.labels.get("nvidia.com/mig.config.state") == "success"
        assert after.status.capacity.get("nvidia.com/mig-2g.20gb") == "24"  # 8 GPUs x 3
    finally:
        lab.apps.delete_namespaced_deployment("mig-user", namespace)
        lab.core.patch_node(node, {"spec": {"unschedulable": None}})
        restore = ansible_playbook(PLAYBOOK)
        assert restore.rc == 0, str(restore)
