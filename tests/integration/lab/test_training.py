"""Training (role training, playbooks/training.yml) against the lab: the real kubeflow-trainer 2.3.0 chart with its
JobSet 0.12.0 subchart, and their real controllers (Trainer from the Go module proxy, JobSet from the source extract,
played by pod_host as the chart's pods), with the real Kueue admitting TrainJobs.

A team submits the examples/trainjob TrainJob (rendered by examples/render.py from the config, the way a team does)
in its namespace: Kueue's webhook suspends it and Kueue makes one Workload of it, admits it within the team's quota,
and Trainer creates the JobSet, JobSet its Jobs, kube-controller-manager the pods, kube-scheduler binds them to the
admitted pool's nodes (the flavor's node label). A second one over the quota waits: not admitted, suspended (its
JobSet suspended too), no pod. Removing a runtime from services.training.runtimes removes its ClusterTrainingRuntime.

Simulated: the GPUs (KWOK nodes with the capacity the GPU layer gives them) and the containers (KWOK reports the pods
Running; nothing runs torchrun). The pods are held Running for the test (a runtime patch with KWOK's delay annotation,
as a team's own patch would be written).
"""
import json
import os
import subprocess
import sys
import time
import uuid

import pytest
import yaml

from lab_helpers import ensure_gpu_layer, wait_for
from playbook import LAB_CONFIG, ROOT, ansible_playbook

sys.path.insert(0, ROOT + "/lab")
from gpufleet_lab import settings  # noqa: E402

KUEUE = ("kueue.x-k8s.io", "v1beta2")
TRAINER = ("trainer.kubeflow.org", "v1alpha1")
JOBSET = ("jobset.x-k8s.io", "v1alpha2")
RUN_FOR = "pod-complete.stage.kwok.x-k8s.io/delay"  # lab/kwok/kwok.yaml: how long a Job's pod runs
PLAYBOOK = "playbooks/training.yml"
A100_NODES = {"lab-a100-1", "lab-a100-2"}


def _write(tmp, config, name="config.yml"):
    path = tmp / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def tr(lab, tmp_path_factory):
    """A team of its own (a cohort of its own, 8 A100 GPUs, no borrowing) with training defaults, the scheduling
    layer converged for it (Kueue with the TrainJob and JobSet integrations the plan derives)."""
    ensure_gpu_layer(lab, ansible_playbook)
    s = uuid.uuid4().hex[:4]
    with open(LAB_CONFIG) as handle:
        config = yaml.safe_load(handle)
    cluster = "trn-%s" % s
    team = "t%s-train" % s
    config["cluster"]["name"] = cluster
    config["scheduling"] = {"cohort": cluster}
    config["teams"] = [{"name": team, "training": {"default_runtime": "torch-distributed"},
                        "quotas": {"a100": {"nvidia.com/gpu": {"nominal": 8, "borrowing_limit": 0,
                                                               "lending_limit": 0}}}}]
    services = config["services"]
    config["services"] = {"gpu_operator": {"enabled": True}, "monitoring": {"enabled": False},
                          "kueue": services["kueue"],
                          "training": {"enabled": True, "runtimes": ["torch-distributed", "jax-distributed"]}}
    tmp = tmp_path_factory.mktemp("training")
    state = {"config": config, "path": _write(tmp, config), "tmp": tmp, "cluster": cluster, "team": team,
             "times": {}}
    t0 = time.time()
    result = ansible_playbook("playbooks/scheduling.yml", config=state["path"])
    assert result.rc == 0, result
    state["times"]["scheduling"] = round(time.time() - t0, 1)
    yield state
    _cleanup(lab, state)
    print("\ntraining lab timings (s): %s" % state["times"])


def _cleanup(lab, state):
    ns = state["team"]
    for tj in lab.custom.list_namespaced_custom_object(*TRAINER, ns, "trainjobs")["items"]:
        lab.custom.delete_namespaced_custom_object(*TRAINER, ns, "trainjobs", tj["metadata"]["name"])
    selector = "app.kubernetes.io/managed-by=gpufleet,gpufleet.io/cluster=%s" % state["cluster"]
    for obj in lab.custom.list_cluster_custom_object(*TRAINER, "clustertrainingruntimes",
                                                     label_selector=selector)["items"]:
        lab.custom.delete_cluster_custom_object(*TRAINER, "clustertrainingruntimes", obj["metadata"]["name"])
    for obj in lab.custom.list_cluster_custom_object(*KUEUE, "localqueues", label_selector=selector)["items"]:
        lab.custom.delete_namespaced_custom_object(*KUEUE, obj["metadata"]["namespace"], "localqueues",
                                                   obj["metadata"]["name"])
    for plural in ("clusterqueues", "workloadpriorityclasses", "resourceflavors"):
        for obj in lab.custom.list_cluster_custom_object(*KUEUE, plural, label_selector=selector)["items"]:
            lab.custom.delete_cluster_custom_object(*KUEUE, plural, obj["metadata"]["name"])
    for item in lab.core.list_namespace(label_selector=selector).items:
        lab.core.delete_namespace(item.metadata.name)


def _runtimes(lab, state):
    selector = "app.kubernetes.io/managed-by=gpufleet,gpufleet.io/cluster=%s" % state["cluster"]
    return sorted(o["metadata"]["name"] for o in lab.custom.list_cluster_custom_object(
        *TRAINER, "clustertrainingruntimes", label_selector=selector)["items"])


def _render(state, *args):
    """examples/render.py trainjob, as a team runs it: the manifest (the process must succeed)."""
    res = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "render.py"), "trainjob",
                          "--config", str(state["path"]), "--team", state["team"]] + list(args),
                         check=False, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return yaml.safe_load(res.stdout)


def _submit(lab, manifest, name):
    body = dict(manifest, metadata=dict(manifest["metadata"], name=name))
    body["metadata"].pop("generateName", None)
    # KWOK's pods of a Job "run" for 1 s: hold them Running (the GPUs taken) until the test deletes the TrainJob
    body["spec"] = dict(body["spec"], runtimePatches=[{
        "manager": "lab.gpufleet.io/test",
        "trainingRuntimeSpec": {"template": {"spec": {"replicatedJobs": [{
            "name": "node", "template": {"spec": {"template": {"metadata": {"annotations": {RUN_FOR: "1h"}}}}}}]}}}}])
    return lab.custom.create_namespaced_custom_object(*TRAINER, body["metadata"]["namespace"], "trainjobs", body)


def _workload(lab, ns, trainjob):
    for wl in lab.custom.list_namespaced_custom_object(*KUEUE, ns, "workloads")["items"]:
        if any(o.get("kind") == "TrainJob" and o.get("name") == trainjob
               for o in wl["metadata"].get("ownerReferences") or []):
            return wl
    return None


def _workload_if(lab, ns, trainjob, predicate):
    wl = _workload(lab, ns, trainjob)
    return wl if wl and predicate(wl) else None


def _cond(obj, kind):
    return next((c for c in ((obj or {}).get("status") or {}).get("conditions") or [] if c["type"] == kind), None)


def _admitted(wl):
    cond = _cond(wl, "Admitted")
    return bool(cond and cond["status"] == "True")


def _jobsets(lab, ns, trainjob):
    return [j for j in lab.custom.list_namespaced_custom_object(*JOBSET, ns, "jobsets")["items"]
            if j["metadata"]["name"] == trainjob]


def _pods(lab, ns, trainjob):
    return lab.core.list_namespaced_pod(ns, label_selector="jobset.sigs.k8s.io/jobset-name=%s" % trainjob).items


def test_converge_is_idempotent_and_check_mode_predicts(lab, tr):
    """First converge changed (the release, two ClusterTrainingRuntimes, the team's ConfigMap), the second changed
    nothing, check mode with --diff on the converged lab predicts nothing; the controllers are the real ones."""
    t0 = time.time()
    first = ansible_playbook(PLAYBOOK, config=tr["path"])
    tr["times"]["first converge"] = round(time.time() - t0, 1)
    assert first.rc == 0, first
    assert first.changed > 0, first.recap
    t0 = time.time()
    second = ansible_playbook(PLAYBOOK, config=tr["path"])
    tr["times"]["re-run"] = round(time.time() - t0, 1)
    assert second.rc == 0, second
    assert second.changed == 0, second.changed_tasks()
    check = ansible_playbook(PLAYBOOK, config=tr["path"], check=True, diff=True)
    assert check.rc == 0, check
    assert check.changed == 0, check.changed_tasks()
    assert _runtimes(lab, tr) == ["jax-distributed", "torch-distributed"]
    cm = lab.core.read_namespaced_config_map("gpufleet-training", tr["team"])
    assert cm.data == {"default_runtime": "torch-distributed", "runtimes": "torch-distributed,jax-distributed",
                       "local_queue": "default"}
    deployments = {d.metadata.name: d for d in lab.apps.list_namespaced_deployment("kubeflow-system").items}
    for name in ("kubeflow-trainer-controller-manager", "jobset-controller"):
        assert (deployments[name].status.available_replicas or 0) >= 1, name
        image = deployments[name].spec.template.spec.containers[0].image
        assert image.startswith("registry.invalid/gpufleet-lab/"), image
    # the real controllers play those pods (pod_host, lab/gpufleet_lab/controllers.py): running and ready
    with open(os.path.join(settings.RUN, "pod-host.json")) as handle:
        played = {p["binary"]: p for p in json.load(handle)["pods"].values()}
    for binary in ("trainer-controller-manager", "jobset"):
        assert played[binary]["status"] == "running" and played[binary]["ready"], played.get(binary)
    # Kueue's Configuration now lists what Trainer brings
    kueue_cm = [c for c in lab.core.list_namespaced_config_map("kueue-system").items
                if "controller_manager_config.yaml" in (c.data or {})]
    assert kueue_cm and "trainer.kubeflow.org/trainjob" in kueue_cm[0].data["controller_manager_config.yaml"]


def test_trainjob_is_admitted_within_quota_and_runs_on_the_pool(lab, tr):
    """examples/trainjob, 2 nodes x 4 GPUs (the team's whole quota of 8): one Workload, admitted; the JobSet and its
    2 pods created, each asking 4 GPUs, bound to A100 nodes (the flavor's node label gpufleet.io/pool=a100)."""
    ns = tr["team"]
    manifest = _render(tr, "--pool", "a100", "--replicas", "2", "--gpus", "4")
    assert manifest["kind"] == "TrainJob" and manifest["spec"]["runtimeRef"]["name"] == "torch-distributed"
    assert manifest["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "default"
    t0 = time.time()
    _submit(lab, manifest, "fits")
    wl = wait_for(lambda: _workload_if(lab, ns, "fits", _admitted), timeout=120,
                  what="the TrainJob's Workload admitted")
    tr["times"]["submit to Admitted"] = round(time.time() - t0, 1)
    assert sum(ps["count"] for ps in wl["spec"]["podSets"]) == 2
    assigned = wl["status"]["admission"]["podSetAssignments"]
    assert {a["flavors"]["nvidia.com/gpu"] for a in assigned} == {"a100"}, assigned
    wait_for(lambda: _jobsets(lab, ns, "fits"), timeout=120, what="the JobSet of the TrainJob")

    def bound():
        pods = [p for p in _pods(lab, ns, "fits") if p.spec.node_name]
        return pods if len(pods) == 2 else None
    pods = wait_for(bound, timeout=180, what="both pods of the TrainJob bound")
    tr["times"]["submit to pods bound"] = round(time.time() - t0, 1)
    assert {p.spec.node_name for p in pods} <= A100_NODES
    for pod in pods:
        assert (pod.spec.node_selector or {}).get("gpufleet.io/pool") == "a100", pod.spec.node_selector
        limits = pod.spec.containers[0].resources.limits
        assert limits["nvidia.com/gpu"] == "4", limits
    tj = lab.custom.get_namespaced_custom_object(*TRAINER, ns, "trainjobs", "fits")
    assert tj["spec"].get("suspend") is False, tj["spec"]


def test_trainjob_over_quota_waits(lab, tr):
    """A second TrainJob of 2 x 4 GPUs while the first holds the team's 8: its Workload is not admitted (Kueue's
    reason: insufficient quota), the TrainJob stays suspended (its JobSet, if Trainer made it yet, too), no pod."""
    ns = tr["team"]
    if not _admitted(_workload(lab, ns, "fits")):
        pytest.skip("needs the admitted TrainJob of test_trainjob_is_admitted_within_quota_and_runs_on_the_pool")
    _submit(lab, _render(tr, "--pool", "a100", "--replicas", "2", "--gpus", "4"), "waits")
    wait_for(lambda: _workload_if(lab, ns, "waits", lambda w: _cond(w, "QuotaReserved")),
             timeout=120, what="the second Workload evaluated")
    time.sleep(5)  # Kueue admits within a second of free quota; a wrongly admitted one would show by now
    wl = _workload(lab, ns, "waits")
    assert not _admitted(wl), wl.get("status")
    reserved = _cond(wl, "QuotaReserved")
    assert reserved["status"] == "False" and "insufficient" in reserved["message"], reserved
    tj = lab.custom.get_namespaced_custom_object(*TRAINER, ns, "trainjobs", "waits")
    assert tj["spec"].get("suspend") is True, tj["spec"]
    # Trainer creates the JobSet of a suspended TrainJob suspended too (upstream behaviour): no pod exists
    assert all(j["spec"].get("suspend") is True for j in _jobsets(lab, ns, "waits")), _jobsets(lab, ns, "waits")
    assert _pods(lab, ns, "waits") == []


def test_removing_a_runtime_removes_its_cluster_training_runtime(lab, tr):
    """jax-distributed dropped from services.training.runtimes: the next converge deletes it (and only it)."""
    config = dict(tr["config"], services=dict(tr["config"]["services"],
                                              training={"enabled": True, "runtimes": ["torch-distributed"]}))
    path = _write(tr["tmp"], config, "one-runtime.yml")
    result = ansible_playbook(PLAYBOOK, config=path)
    assert result.rc == 0, result
    assert "deleted ClusterTrainingRuntime jax-distributed" in " ".join(result.stdout.split()), result.stdout[-3000:]
    assert _runtimes(lab, tr) == ["torch-distributed"]


def test_an_integration_without_its_operator_is_refused_before_any_change(lab, tr):
    """services.kueue.integrations with ray.io/rayjob (no KubeRay in the config): validation stops the run naming
    services.kueue.integrations[i]; nothing is applied."""
    config = dict(tr["config"], services=dict(tr["config"]["services"], kueue=dict(
        tr["config"]["services"]["kueue"], integrations=["batch/job", "ray.io/rayjob"])))
    result = ansible_playbook(PLAYBOOK, config=_write(tr["tmp"], config, "ray.yml"))
    assert result.rc != 0
    text = " ".join(result.stdout.split())
    assert "services.kueue.integrations[1]: its operator, KubeRay" in text and "(got 'ray.io/rayjob')" in text, text[-2000:]
