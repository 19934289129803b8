"""The real NVIDIA GPU Operator in the lab (issue 13 item 4): only the GPUs are simulated.

The gpu-operator chart is the real upstream chart; pod_host plays its operator Deployment with the binary built
from the pinned source (controllers.py "gpu-operator"). What this module checks can only be true if that operator
ran: the ClusterPolicy's operand DaemonSets exist with the ClusterPolicy as their controller, their pods sit on the
GPU nodes only (KWOK reports them Running, kube-controller-manager counts them), and the ClusterPolicy status
(state ready, condition Reconciled) was written by the operator, not by the GPU simulator. The simulator plays
the hardware: NFD's PCI/kernel/OS labels and DCGM-exporter metrics per simulated GPU.
"""
import json
import os
import urllib.request

import pytest

from gpufleet_lab import controllers, settings
from lab_helpers import wait_for
from playbook import ansible_playbook

PLAYBOOK = "playbooks/gpu.yml"
NS = "gpu-operator"
CP = "cluster-policy"
PLAYED = "gpu-operator/gpu-operator/gpu-operator"  # <namespace>/<Deployment>/<container> in pod-host.json
# Operands the role's values turn on (roles/gpu_operator/templates/values.yml.j2): name -> nodes it must cover
OPERANDS = {
    "nvidia-driver-daemonset": "gpu",
    "nvidia-container-toolkit-daemonset": "gpu",
    "nvidia-device-plugin-daemonset": "gpu",
    "gpu-feature-discovery": "gpu",
    "nvidia-operator-validator": "gpu",
    "nvidia-dcgm-exporter": "gpu",
    "nvidia-mig-manager": "mig",  # MIG-capable GPU nodes only (nvidia.com/gpu.deploy.mig-manager)
}


@pytest.fixture(scope="module")
def operator(lab):
    if controllers.match("gpu-operator", "gpu-operator", None) is None:
        pytest.skip("the GPU Operator binary is not built (bash lab/build.sh gpu-operator)")
    result = ansible_playbook(PLAYBOOK)
    assert result.rc == 0, str(result)
    return lab.custom.get_cluster_custom_object("nvidia.com", "v1", "clusterpolicies", CP)


def _pod_host():
    with open(os.path.join(settings.RUN, "pod-host.json")) as fh:
        return json.load(fh)["pods"]


def _gpu_nodes(lab):
    return {n["name"]: n["pool"] for n in lab.gpu_nodes()}


def _owned_daemonsets(lab, cp):
    out = {}
    for ds in lab.apps.list_namespaced_daemon_set(NS).items:
        refs = [r for r in ds.metadata.owner_references or () if r.controller]
        if refs and refs[0].kind == "ClusterPolicy" and refs[0].uid == cp["metadata"]["uid"]:
            out[ds.metadata.name] = ds
    return out


def test_operator_process_plays_the_chart_deployment(lab, operator):
    played = _pod_host()[PLAYED]
    assert played["binary"] == "gpu-operator" and played["status"] == "running", played
    assert played["ready"] is True, played  # the chart's readinessProbe (/readyz on 8081) against the process
    dep = lab.apps.read_namespaced_deployment("gpu-operator", NS)
    container = dep.spec.template.spec.containers[0]
    with open("/proc/%d/cmdline" % played["pid"], "rb") as fh:
        argv = fh.read().decode().rstrip("\0").split("\0")
    assert os.path.basename(argv[0]) == "gpu-operator"
    assert argv[1:] == container.args and "--leader-elect" in argv  # the chart's args and leader election
    # the image's state manifests, mounted where the operator reads them, in the process's own root
    assert os.path.isdir("/proc/%d/root/opt/gpu-operator/state-driver" % played["pid"])
    assert os.path.isdir("/proc/%d/root/opt/gpu-operator/manifests/state-driver" % played["pid"])
    from kubernetes import client
    lease = client.CoordinationV1Api(lab.api_client).read_namespaced_lease("53822513.nvidia.com", NS)
    assert lease.spec.holder_identity  # the operator's LeaderElectionID, in its namespace
    assert dep.status.ready_replicas == 1
    assert dep.spec.template.spec.service_account_name == "gpu-operator"


def test_cluster_policy_status_is_the_operators(lab, operator):
    def ready():
        cp = lab.custom.get_cluster_custom_object("nvidia.com", "v1", "clusterpolicies", CP)
        return cp if (cp.get("status") or {}).get("state") == "ready" else None
    cp = wait_for(ready, what="ClusterPolicy ready")
    status = cp["status"]
    assert status["state"] == "ready" and status["namespace"] == NS
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert ready["status"] == "True" and ready["reason"] == "Reconciled", ready
    assert "successfully reconciled" in ready["message"]
    managers = {(m["manager"], m.get("subresource")) for m in cp["metadata"]["managedFields"]}
    assert ("gpu-operator", "status") in managers, managers
    with open(os.path.join(settings.RUN, "gpu-simulator.json")) as fh:
        sim = json.load(fh)
    assert sim["cluster_policy_status"] == "gpu-operator" and sim["cluster_policies_ready"] == 0, sim


def test_operand_daemonsets_are_owned_by_the_cluster_policy(lab, operator):
    cp = lab.custom.get_cluster_custom_object("nvidia.com", "v1", "clusterpolicies", CP)
    owned = _owned_daemonsets(lab, cp)
    assert set(OPERANDS) <= set(owned), sorted(owned)
    gpu = _gpu_nodes(lab)
    mig = [n for n in gpu if lab.core.read_node(n).metadata.labels.get("nvidia.com/mig.capable") == "true"]
    for name, where in OPERANDS.items():
        want = len(mig) if where == "mig" else len(gpu)

        def ready(name=name, want=want):
            st = lab.apps.read_namespaced_daemon_set_status(name, NS).status
            return st if st.desired_number_scheduled == want and st.number_ready == want else None
        wait_for(ready, timeout=60, what="DaemonSet %s ready on %d nodes" % (name, want))


def test_operand_pods_run_on_gpu_nodes_only(lab, operator):
    cp = lab.custom.get_cluster_custom_object("nvidia.com", "v1", "clusterpolicies", CP)
    owned = {ds.metadata.uid: name for name, ds in _owned_daemonsets(lab, cp).items()}
    gpu = _gpu_nodes(lab)
    where = {}
    for pod in lab.core.list_namespaced_pod(NS).items:
        refs = [r for r in pod.metadata.owner_references or () if r.kind == "DaemonSet" and r.uid in owned]
        if refs and not pod.metadata.deletion_timestamp:
            assert pod.spec.node_name in gpu, "%s on non-GPU node %s" % (pod.metadata.name, pod.spec.node_name)
            assert pod.status.phase == "Running", (pod.metadata.name, pod.status.phase)
            where.setdefault(owned[refs[0].uid], set()).add(pod.spec.node_name)
    for name in ("nvidia-driver-daemonset", "nvidia-device-plugin-daemonset", "nvidia-dcgm-exporter"):
        assert where.get(name) == set(gpu), (name, sorted(where.get(name, ())))
    assert where["nvidia-mig-manager"] == {n for n, pool in gpu.items() if pool in ("a100", "h100")}
    # the operator's own node labelling selected those nodes (from the simulator's NFD PCI labels)
    for name in gpu:
        labels = lab.core.read_node(name).metadata.labels
        assert labels["feature.node.kubernetes.io/pci-10de.present"] == "true"
        assert labels["nvidia.com/gpu.deploy.device-plugin"] == "true"
        assert labels["nvidia.com/gpu.deploy.driver"] == "true"


def test_dcgm_metrics_per_simulated_gpu(lab, operator):
    url = "http://127.0.0.1:%d/metrics" % settings.PORTS["dcgm"]
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    seen = set()
    for line in text.splitlines():
        if line.startswith("DCGM_FI_DEV_GPU_UTIL{"):
            labels = dict(kv.split("=", 1) for kv in line[line.index("{") + 1:line.index("}")].split(","))
            seen.add((labels["Hostname"].strip('"'), int(labels["gpu"].strip('"'))))
    pools = lab.config["gpu_pools"]
    want = {(n["name"], i) for n in lab.gpu_nodes() for i in range(int(pools[n["pool"]]["gpus_per_node"]))}
    assert seen == want
    for metric in ("DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE"):
        assert sum(1 for line in text.splitlines() if line.startswith(metric + "{")) == len(want), metric
