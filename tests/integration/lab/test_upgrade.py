"""playbooks/upgrade.yml against the lab: GPU workers through a Kubernetes upgrade one at a time, and a run killed
half-way finished by the next one (issue 15 item 4).

Kubespray cannot run in the lab (no hosts, no SSH). `import_playbook: kubernetes_sigs.kubespray.upgrade_cluster`
resolves to the lab stand-in in tests/integration/lab/kubespray_upgrade (its README says what it does): Kubespray
v2.31.0's worker play as far as the Node objects go (pre-upgrade cordon and drain of a schedulable node, the host's
post_upgrade_hooks, uncordon of a node it cordoned), with the node's own upgrade replaced by a record of the cordoned
nodes and the node's pods at that moment. The simulated kubelets already report the target version, so the target
is the lab's own (1.35.4: a re-run of the same version, which Kubespray allows). Everything on the collection's side
is real: the preflight against the API server and the GPU Operator's real ClusterPolicy, the drain of the first GPU
node, the hook's waits for the ClusterPolicy and the node's planned GPU resources, the cordons marked
gpufleet.io/cordoned-by=cluster_upgrade, the hand-over to the next GPU node, the final check.

The GPU workers are the a100 pool and lab-l40s-1 (--limit, as docs/operations/upgrade.md limits by pool);
-e gpufleet_upgrade_simulated=true lets upgrade.yml count the lab's simulated GPU nodes as GPU workers. An upgrade
run always cordons and drains, so a second run is not changed=0 (nor is Kubespray's).
"""
import json
import os

import pytest

from lab_helpers import cordons, ensure_gpu_layer, wait_for
from playbook import ROOT, ansible_playbook, killed_run

PLAYBOOK = "playbooks/upgrade.yml"
STAND_IN = os.path.join(ROOT, "tests", "integration", "lab", "kubespray_upgrade")
WORKERS = ["lab-a100-1", "lab-a100-2", "lab-l40s-1"]  # kube_node order, as Kubespray's worker play takes them
LIMIT = "localhost:pool_a100:lab-l40s-1"
MARK = "gpufleet.io/cordoned-by"


def _args(log):
    return ("--limit", LIMIT, "-e", "gpufleet_upgrade_simulated=true", "-e", "cluster_upgrade_ready_delay=1",
            "-e", "cluster_upgrade_drain_delay=1", "-e", "cluster_upgrade_drain_grace_period=0",
            "-e", "gpufleet_lab_upgrade_log=%s" % log)


def upgrade(log, **kwargs):
    return ansible_playbook(PLAYBOOK, *_args(log), collections_append=STAND_IN, **kwargs)


def _records(log):
    with open(log) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _one_at_a_time(records):
    """Each GPU worker was the only cordoned GPU worker when it was upgraded, and no pod a drain evicts ran on it."""
    assert [r["node"] for r in records] == WORKERS, records
    for record in records:
        assert [n for n in record["cordoned"] if n in WORKERS] == [record["node"]], record
        assert record["pods"] == [], record


@pytest.fixture
def workload(lab, namespace):
    """A Deployment with one GPU pod on each GPU worker (spread by hostname, like a team's replicas), and the nodes
    clean before and after."""
    ensure_gpu_layer(lab, ansible_playbook)
    assert not {n: c for n, c in cordons(lab).items() if n in WORKERS}, cordons(lab)
    lab.apps.create_namespaced_deployment(namespace, {
        "metadata": {"name": "gpu-service"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "gpu-service"}},
                 "template": {"metadata": {"labels": {"app": "gpu-service"}}, "spec": {
                     "tolerations": [{"operator": "Exists", "effect": "NoSchedule", "key": "nvidia.com/gpu"}],
                     "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                         "nodeSelectorTerms": [{"matchExpressions": [
                             {"key": "kubernetes.io/hostname", "operator": "In", "values": WORKERS}]}]}}},
                     "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                    "whenUnsatisfiable": "ScheduleAnyway",
                                                    "labelSelector": {"matchLabels": {"app": "gpu-service"}}}],
                     "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "c", "image": "registry.invalid/cuda:0",
                                     "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}}})

    def available():
        d = lab.apps.read_namespaced_deployment("gpu-service", namespace)
        return (d.status.available_replicas or 0) == 3
    wait_for(available, timeout=120, what="the GPU Deployment available")
    yield available
    for name in WORKERS:
        lab.core.patch_node(name, {"spec": {"unschedulable": None},
                                   "metadata": {"annotations": {MARK: None, "gpufleet.io/cordon-reason": None}}})


def test_gpu_workers_go_one_at_a_time(lab, workload, tmp_path):
    log = tmp_path / "upgrade.jsonl"
    result = upgrade(log)
    assert result.rc == 0, str(result)
    _one_at_a_time(_records(log))
    out = " ".join(result.stdout.split())
    changed = " ".join(result.changed_tasks())
    # the first GPU worker drained before Kubespray, each later one by the hook of the one before
    assert "Cordon (marked) and drain the first GPU node | lab-a100-1" in out, str(result)
    for name in ("lab-a100-2", "lab-l40s-1"):
        assert "GPU upgrade hook | Cordon (marked) and drain the next GPU node | %s" % name in out, str(result)
    assert changed.count("node_drain : Cordon the nodes (bulk), marked gpufleet.io/cordoned-by=cluster_upgrade") == 3, \
        result.changed_tasks()
    assert changed.count("GPU upgrade hook | Uncordon the node (a cordon of this role only)") == 3, \
        result.changed_tasks()
    # the stand-in Kubespray found each GPU worker cordoned, so left it to the hook (it never cordoned one itself)
    assert "Kubespray stand-in" in out and " : Cordon and drain the node]" in out, str(result)
    assert " : Cordon and drain the node]" not in changed, result.changed_tasks()
    assert {n: c for n, c in cordons(lab).items() if n in WORKERS} == {}, cordons(lab)
    wait_for(workload, timeout=120, what="the GPU Deployment available again")


def test_a_cordon_someone_else_made_stays(lab, workload, tmp_path):
    """An admin cordoned lab-l40s-1 before the upgrade: it is drained for its upgrade but never uncordoned (no mark),
    and the final check names it without failing the run."""
    lab.core.patch_node("lab-l40s-1", {"spec": {"unschedulable": True}})
    log = tmp_path / "upgrade.jsonl"
    result = upgrade(log)
    assert result.rc == 0, str(result)
    left = {n: c for n, c in cordons(lab).items() if n in WORKERS}
    assert left == {"lab-l40s-1": {"unschedulable": True, "mark": None}}, left
    records = _records(log)
    assert records[-1]["node"] == "lab-l40s-1" and records[-1]["pods"] == [], records
    out = " ".join(result.stdout.split())
    assert "cordoned by someone else (no gpufleet.io/cordoned-by mark), left as they are: lab-l40s-1" in out, \
        str(result)


def test_a_killed_upgrade_is_finished_by_the_next_run(lab, workload, tmp_path):
    # killed while the stand-in Kubespray upgrades lab-a100-2, which the hook of lab-a100-1 cordoned and drained
    log = tmp_path / "killed.jsonl"
    rc, tasks, out = killed_run(PLAYBOOK, *_args(log), collections_append=STAND_IN,
                                kill_at=lambda seen: sum("Read the nodes and the pods" in t
                                                         for t in seen) == 2)
    assert rc != 0, out[-6000:]
    left = cordons(lab)
    assert left.get("lab-a100-2") == {"unschedulable": True, "mark": "cluster_upgrade"}, (left, out[-4000:])

    log = tmp_path / "rerun.jsonl"
    rerun = upgrade(log)
    assert rerun.rc == 0, str(rerun)
    out = " ".join(rerun.stdout.split())
    assert ("Uncordoned (cordoned by gpufleet.platform for an upgrade, target state reached): lab-a100-2; "
            "still cordoned") in out, str(rerun)
    _one_at_a_time(_records(log))  # lab-a100-2 was given back before lab-a100-1 went
    assert {n: c for n, c in cordons(lab).items() if n in WORKERS} == {}, cordons(lab)
    wait_for(workload, timeout=120, what="the GPU Deployment available again")
