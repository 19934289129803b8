"""playbooks/remove_node.yml against the lab: the platform side of removing a worker.

Kubespray cannot run in the lab (no hosts, no SSH): the runs here skip its play with `--skip-tags kubespray`, and
`import_playbook: kubernetes_sigs.kubespray.remove_node` resolves to the lint stand-in (tests/lint/collections),
whose only task fails if it ever runs. What is tested is real: the validation of -e node / -e gpufleet_force_drain
before any change, the refusal while the node runs a GPU pod (its cordon given back), the forced drain that evicts
it, the cordon marked gpufleet.io/cordoned-by=remove_node, the platform's node labels dropped, check mode, diff and
the idempotent re-run, and that the MIG role does not uncordon a node the removal cordoned. Kubespray's own part
(reset of the host, kubectl delete node) and the last play (the nodes left the cluster) are not run here.
"""
import os
import time

import pytest

from lab_helpers import wait_for
from playbook import ROOT, ansible_playbook

PLAYBOOK = "playbooks/remove_node.yml"
STAND_IN = os.path.join(ROOT, "tests", "lint", "collections")
NODE = "lab-l40s-2"
MARK = "gpufleet.io/cordoned-by"
PLATFORM_LABELS = ("gpufleet.io/pool", "nvidia.com/device-plugin.config")


def remove(*args, **kwargs):
    return ansible_playbook(PLAYBOOK, "--skip-tags", "kubespray", *args, collections_append=STAND_IN, **kwargs)


def _state(lab, name=NODE):
    node = lab.core.read_node(name)
    return {"unschedulable": bool(node.spec.unschedulable), "mark": (node.metadata.annotations or {}).get(MARK),
            "labels": {k: v for k, v in (node.metadata.labels or {}).items() if k in PLATFORM_LABELS}}


def _reset(lab):
    """The node as the GPU layer made it, the way docs/operations/remove-node.md keeps a node after all: uncordon it,
    drop the mark, run the GPU layer again for its labels. (Not lab.reset_nodes: deleting the Node object leaves its
    DaemonSet pods Terminating and their successors Pending in the lab, and the GPU Operator's ClusterPolicy notReady.)"""
    lab.core.patch_node(NODE, {"spec": {"unschedulable": None},
                               "metadata": {"annotations": {MARK: None, "gpufleet.io/cordon-reason": None}}})
    result = ansible_playbook("playbooks/gpu.yml", "--tags", "gpu_operator,gpu_sharing")
    assert result.rc == 0, str(result)
    state = _state(lab)
    assert not state["unschedulable"] and set(state["labels"]) == set(PLATFORM_LABELS), state


@pytest.fixture(scope="module")
def restore(lab):
    """Start from the node as the GPU layer made it, and put it back so at the end."""
    state = _state(lab)
    if state["unschedulable"] or state["mark"] or set(state["labels"]) != set(PLATFORM_LABELS):
        _reset(lab)
    yield
    _reset(lab)


@pytest.mark.parametrize("extra,expected", [
    ({"node": "gpu-nope"}, ['node="gpu-nope"', "gpu-nope: not in nodes[] of config.yml", "Allowed: lab-cpu-1,"]),
    ({"node": "lab-cp-1"}, ["lab-cp-1: nodes[].roles has control-plane or etcd", "Allowed: lab-cpu-1,"]),
    ({}, ['node=""', "no node named", "Allowed: lab-cpu-1,"]),
    ({"node": NODE, "gpufleet_force_drain": "maybe"}, ['gpufleet_force_drain="maybe"', "must be true or false"]),
])
def test_bad_input_stops_before_any_change(lab, restore, extra, expected):
    before = _state(lab)
    result = remove(extra_vars=extra)
    assert result.rc != 0, str(result)
    out = " ".join(result.stdout.split())
    for text in expected:
        assert text in out, "%r not in the output\n%s" % (text, result)
    assert result.changed == 0, result.changed_tasks()
    assert _state(lab) == before


def test_refused_while_a_gpu_pod_runs_then_forced(lab, restore, namespace):
    lab.core.create_namespaced_pod(namespace, {
        "metadata": {"name": "gpu-user"},
        "spec": {"nodeName": NODE, "tolerations": [{"operator": "Exists"}],
                 "containers": [{"name": "c", "image": "registry.invalid/cuda:0",
                                 "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}})
    wait_for(lambda: lab.core.read_namespaced_pod("gpu-user", namespace).status.phase == "Running", timeout=60,
             what="the GPU pod Running")
    before = _state(lab)
    assert before["labels"] and not before["unschedulable"], before

    refused = remove(extra_vars={"node": NODE})
    assert refused.rc != 0, str(refused)
    out = " ".join(refused.stdout.split())
    # other GPU pods on the node (a served model's predictor, when test_serving ran first) are named beside it
    assert "Removing %s would stop running GPU pods: %s: " % (NODE, NODE) in out, str(refused)
    assert "%s/gpu-user (nvidia.com/gpu=1)" % namespace in out, str(refused)
    assert "nothing was changed" in out and "-e gpufleet_force_drain=true" in out, str(refused)
    assert _state(lab) == before, "the refused removal left the node changed"

    check = remove(extra_vars={"node": NODE, "gpufleet_force_drain": "true"}, check=True, diff=True)
    assert check.rc == 0, str(check)
    predicted = " ".join(check.stdout.split())
    assert "Would cordon (marked gpufleet.io/cordoned-by=remove_node) %s and drain %s, evicting the GPU pods " % (
        NODE, NODE) in predicted, str(check)
    assert "%s/gpu-user" % namespace in predicted.split("evicting the GPU pods ", 1)[1].split(" (all evicted", 1)[0], str(check)
    assert _state(lab) == before, "check mode changed the node"

    forced = remove(extra_vars={"node": NODE, "gpufleet_force_drain": "true"}, diff=True)
    assert forced.rc == 0, str(forced)
    changed = " ".join(forced.changed_tasks())
    for task in ("node_drain : Cordon the nodes (bulk), marked gpufleet.io/cordoned-by=remove_node",
                 "node_drain : Drain the cordoned nodes", "Drop the platform's labels"):
        assert task in changed, forced.changed_tasks()
    after = _state(lab)
    assert after == {"unschedulable": True, "mark": "remove_node", "labels": {}}, after
    deadline = time.time() + 60
    while [p for p in lab.core.list_namespaced_pod(namespace).items if p.metadata.name == "gpu-user"]:
        assert time.time() < deadline, "the GPU pod was not evicted"
        time.sleep(1)

    again = remove(extra_vars={"node": NODE})
    assert again.rc == 0 and again.changed == 0, again.changed_tasks()
    check = remove(extra_vars={"node": NODE}, check=True, diff=True)
    assert check.rc == 0 and check.changed == 0, check.changed_tasks()

    # a MIG run never uncordons a node the removal cordoned (another owner)
    mig = ansible_playbook("playbooks/gpu.yml", "--tags", "mig")
    assert mig.rc == 0, str(mig)
    assert _state(lab)["mark"] == "remove_node" and _state(lab)["unschedulable"]


def test_a_node_cordoned_by_someone_else_gets_no_mark(lab, restore):
    lab.core.patch_node("lab-cpu-2", {"spec": {"unschedulable": True}})
    try:
        result = remove(extra_vars={"node": "lab-cpu-2"})
        assert result.rc == 0, str(result)
        state = _state(lab, "lab-cpu-2")
        assert state["unschedulable"] and state["mark"] is None, state
    finally:
        lab.core.patch_node("lab-cpu-2", {"spec": {"unschedulable": None}})
